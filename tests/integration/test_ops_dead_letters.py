"""A poisoned message on the real broker: retried EVENT_MAX_ATTEMPTS times,
dead-lettered with its error, listed and replayed by the ``clinic``
command once the fault is fixed, and then applied exactly once."""
import json

import pytest
import sqlalchemy as sa
from kombu import Connection

import cli
from common.deadletters import DEAD_LETTER_QUEUE, dead_letter_queue, list_dead_letters
from common.errors import Conflict
from common.handlers import consumes
from common.observability import DEAD_LETTERS
from common.outbox import plumbing_metadata
from common.service import ClinicService
from tests.support.events import publish_event, republish
from tests.support.ops import wait_until

HANDLER = "ops_probe.on_patient_registered"


class Downstream:
    """What the probe's handler depends on; a test breaks and mends it."""
    broken = False
    applied: list[str] = []


class ProbeService(ClinicService):
    """A consumer of intake's events that exists only in this test."""
    name = "ops_probe"

    @consumes("intake", "patient.registered")
    def on_patient_registered(self, uow, event):
        if Downstream.broken:
            raise ConnectionError("the accounting system is down")
        Downstream.applied.append(event.event_id)

    @consumes("intake", "intake.declined")
    def on_intake_declined(self, uow, event):
        raise Conflict("declined before it was submitted")  # a deterministic rejection


@pytest.fixture
def probe(start_service, tmp_path, rabbit_config, monkeypatch):
    url = f"sqlite:///{tmp_path}/ops_probe.sqlite3"
    plumbing_metadata.create_all(sa.create_engine(url))
    Downstream.broken, Downstream.applied = False, []
    # The clinic command reads the broker from the environment, as in production.
    monkeypatch.setenv("AMQP_URI", rabbit_config["AMQP_URI"])
    return start_service(ProbeService, DATABASE_URLS={"ops_probe": url})


def dead_letters(amqp_uri):
    return list_dead_letters(amqp_uri)


def test_poisoned_event_is_dead_lettered_after_n_attempts_and_replayed_once_fixed(probe, rabbit_config, capsys):
    amqp_uri = rabbit_config["AMQP_URI"]
    counted = DEAD_LETTERS.labels("ops_probe", HANDLER)._value.get()
    Downstream.broken = True
    body = publish_event(amqp_uri, "intake", "patient.registered", {"patient_id": "p-1", "mrn": "MRN000001"})

    [letter] = wait_until(lambda: dead_letters(amqp_uri), message="a dead letter")
    assert letter["attempts"] == probe.config["EVENT_MAX_ATTEMPTS"] == 3
    assert letter["error"] == "ConnectionError: the accounting system is down"
    assert (letter["service"], letter["handler"]) == ("ops_probe", HANDLER)
    assert letter["queue"] == "evt-intake-patient.registered--ops_probe.on_patient_registered"
    assert letter["body"] == body
    assert Downstream.applied == []
    assert DEAD_LETTERS.labels("ops_probe", HANDLER)._value.get() == counted + 1

    # An operator looks: listed, still there afterwards, and a monitor sees it.
    assert cli.main(["dead-letters", "list"]) == cli.EXIT_OK
    listing = capsys.readouterr().out
    assert HANDLER in listing and body["event_id"] in listing and "ConnectionError" in listing
    assert "p-1" not in listing  # event data stays out of the table
    assert cli.main(["dead-letters", "list", "--fail-if-any"]) == cli.EXIT_ATTENTION
    assert len(dead_letters(amqp_uri)) == 1

    # ...fixes the cause and replays.
    Downstream.broken = False
    assert cli.main(["dead-letters", "replay", "--handler", HANDLER]) == cli.EXIT_OK
    assert "replayed 1 dead letter(s)" in capsys.readouterr().out
    wait_until(lambda: Downstream.applied == [body["event_id"]], message="the replayed event applied")
    assert dead_letters(amqp_uri) == []

    # The same event again (a broker redelivery, a second replay) changes nothing.
    republish(amqp_uri, body)
    assert cli.main(["dead-letters", "replay", "--handler", HANDLER]) == cli.EXIT_FAILURE  # nothing matched
    publish_event(amqp_uri, "intake", "patient.registered", {"patient_id": "p-2"})
    wait_until(lambda: len(Downstream.applied) == 2, message="the next event applied")
    assert Downstream.applied[0] == body["event_id"] and body["event_id"] not in Downstream.applied[1:]


def test_a_rejection_is_dead_lettered_at_once_and_replay_picks_by_event(probe, rabbit_config, capsys):
    amqp_uri = rabbit_config["AMQP_URI"]
    Downstream.broken = True
    failing = publish_event(amqp_uri, "intake", "patient.registered", {"patient_id": "p-3"})
    rejected = publish_event(amqp_uri, "intake", "intake.declined", {"patient_id": "p-4"})
    wait_until(lambda: len(dead_letters(amqp_uri)) == 2, message="two dead letters")
    by_handler = {letter["handler"]: letter for letter in dead_letters(amqp_uri)}
    assert by_handler["ops_probe.on_intake_declined"]["attempts"] == 1
    assert by_handler["ops_probe.on_intake_declined"]["error"].startswith("Conflict: ")

    Downstream.broken = False
    assert cli.main(["dead-letters", "replay", "--event-id", failing["event_id"]]) == cli.EXIT_OK
    wait_until(lambda: Downstream.applied == [failing["event_id"]], message="the chosen letter applied")
    [left] = dead_letters(amqp_uri)
    assert left["body"]["event_id"] == rejected["event_id"]

    assert cli.main(["dead-letters", "list", "--json"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert json.loads(out[out.index("["):])[0]["body"]["event_id"] == rejected["event_id"]


def test_a_letter_whose_handler_queue_is_gone_is_kept(rabbit_config, monkeypatch, capsys):
    amqp_uri = rabbit_config["AMQP_URI"]
    monkeypatch.setenv("AMQP_URI", amqp_uri)
    letter = {"service": "retired", "handler": "retired.on_x", "queue": "evt-intake-x--retired.on_x",
              "attempts": 5, "error": "KeyError: 'x'", "failed_at": "2026-11-25T10:00:00Z",
              "body": {"event_id": "e-1", "type": "x"}}
    with Connection(amqp_uri) as connection:
        dead_letter_queue(connection.default_channel).declare()
        connection.Producer().publish(letter, exchange="", routing_key=DEAD_LETTER_QUEUE, serializer="json")
    assert cli.main(["dead-letters", "replay", "--all"]) == cli.EXIT_ATTENTION
    assert "evt-intake-x--retired.on_x" in capsys.readouterr().err
    assert [kept["handler"] for kept in dead_letters(amqp_uri)] == ["retired.on_x"]

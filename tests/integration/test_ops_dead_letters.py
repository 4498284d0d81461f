"""Dead letters on the real broker, every way a message dies: a handler that
keeps failing (retried EVENT_MAX_ATTEMPTS times), an event it rejects, a
body nobody can decode, a message past a quorum queue's delivery limit.
One format for all of them (the original message, untouched, with headers
saying why), listed without bodies, replayed as first sent, and discarded
with who and why."""
import json
import logging

import pytest
import sqlalchemy as sa
from kombu import Connection, Exchange, Queue

import cli
from common.deadletter_operations import list_dead_letters, list_letters
from common.deadletters import DISCARDED_QUEUE, H_DISCARD_REASON, H_DISCARDED_BY, body_bytes, dead_letter_queue
from common.errors import Conflict
from common.handlers import consumes
from common.observability import DEAD_LETTERS, ENTRYPOINT_CALLS
from common.outbox import plumbing_metadata
from common.queues import DEAD_LETTER_QUEUE, consumer_queue_arguments, dead_letter_queue_for
from common.service import ClinicService
from services.intake.events import IntakeDeclined, PatientRegistered
from services.sessions.events import SessionCompleted
from tests.support.events import example_data, publish_event, republish
from tests.support.ops import wait_until

HANDLER = "ops_probe.on_patient_registered"
COMPLETED_QUEUE = "evt-sessions-session.completed--ops_probe.on_session_completed"


class Downstream:
    """What the probe's handlers depend on; a test breaks and mends it."""
    broken = False
    applied: list[str] = []


class ProbeService(ClinicService):
    """A consumer of other services' events that exists only in this test."""
    name = "ops_probe"

    @consumes(PatientRegistered)
    def on_patient_registered(self, uow, event):
        if Downstream.broken:
            raise RuntimeError("the accounting export has a bug")
        Downstream.applied.append(event.event_id)

    @consumes(IntakeDeclined)
    def on_intake_declined(self, uow, event):
        raise Conflict("declined before it was submitted")  # a deterministic rejection

    @consumes(SessionCompleted)
    def on_session_completed(self, uow, event):
        Downstream.applied.append(event.event_id)


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


def calls(entrypoint, outcome):
    return ENTRYPOINT_CALLS.labels("ops_probe", entrypoint, "event", outcome)._value.get()


def publish_bytes(amqp_uri, producer, event_type, body: bytes, content_type, content_encoding="utf-8"):
    """A message on a producer's event exchange, as a broken or hostile
    publisher would send it."""
    with Connection(amqp_uri) as connection:
        connection.Producer().publish(
            body, exchange=Exchange(f"{producer}.events", type="topic", durable=True, auto_delete=True),
            routing_key=event_type, content_type=content_type, content_encoding=content_encoding,
            headers={"nameko.correlation_id": "c-1"}, delivery_mode=2)


def raw_messages(amqp_uri, queue):
    """The messages in ``queue``, left in place: (body bytes, properties)."""
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        fetched = []
        while (message := channel.basic_get(queue, no_ack=False)) is not None:
            fetched.append(message)
        out = [(body_bytes(message.body, message.properties.get("content_encoding")), dict(message.properties))
               for message in fetched]
        for message in fetched:
            channel.basic_reject(message.delivery_tag, requeue=True)
    return out


def test_a_failing_handler_is_retried_then_dead_lettered_and_replayed_once_fixed(probe, rabbit_config, capsys):
    amqp_uri = rabbit_config["AMQP_URI"]
    counted = DEAD_LETTERS.labels("ops_probe", HANDLER)._value.get()
    retrying, errors = calls("on_patient_registered", "retrying"), calls("on_patient_registered", "error")
    Downstream.broken = True
    body = publish_event(amqp_uri, "intake", "patient.registered",
                         example_data(PatientRegistered, patient_id="p-1", mrn="MRN000001"))

    [letter] = wait_until(lambda: dead_letters(amqp_uri), message="a dead letter")
    assert letter["reason"] == "gave-up"
    assert letter["attempts"] == probe.config["EVENT_MAX_ATTEMPTS"] == 3
    assert letter["error"] == "RuntimeError: the accounting export has a bug"
    assert (letter["service"], letter["handler"]) == ("ops_probe", HANDLER)
    assert letter["queue"] == "evt-intake-patient.registered--ops_probe.on_patient_registered"
    assert (letter["event_id"], letter["event_type"]) == (body["event_id"], "patient.registered")
    assert "body" not in letter
    # The letter is the original message: its bytes and content type.
    [(raw, properties)] = raw_messages(amqp_uri, DEAD_LETTER_QUEUE)
    assert json.loads(raw) == body and properties["content_type"] == "application/json"
    assert Downstream.applied == []
    # The letter is in the queue a moment before the worker counts it.
    wait_until(lambda: DEAD_LETTERS.labels("ops_probe", HANDLER)._value.get() == counted + 1,
               message="the dead letter counted")
    # Two retries, then a failure the error alert sees.
    assert calls("on_patient_registered", "retrying") == retrying + 2
    wait_until(lambda: calls("on_patient_registered", "error") == errors + 1, message="the failure counted")

    # An operator looks: listed, still there afterwards, and a monitor sees it.
    assert cli.main(["dead-letters", "list"]) == cli.EXIT_OK
    listing = capsys.readouterr().out
    assert HANDLER in listing and body["event_id"] in listing and "gave-up" in listing
    assert "p-1" not in listing and "MRN000001" not in listing  # event data stays out of the table
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
    publish_event(amqp_uri, "intake", "patient.registered", example_data(PatientRegistered, patient_id="p-2"))
    wait_until(lambda: len(Downstream.applied) == 2, message="the next event applied")
    assert Downstream.applied[0] == body["event_id"] and body["event_id"] not in Downstream.applied[1:]


def test_a_rejection_is_dead_lettered_at_once_counted_rejected_and_replay_picks_by_event(
        probe, rabbit_config, capsys):
    amqp_uri = rabbit_config["AMQP_URI"]
    rejected_before = calls("on_intake_declined", "rejected")
    ok_before = calls("on_intake_declined", "ok")
    Downstream.broken = True
    failing = publish_event(amqp_uri, "intake", "patient.registered", example_data(PatientRegistered, patient_id="p-3"))
    rejected = publish_event(amqp_uri, "intake", "intake.declined", example_data(IntakeDeclined, patient_id="p-4"))
    wait_until(lambda: len(dead_letters(amqp_uri)) == 2, message="two dead letters")
    by_handler = {letter["handler"]: letter for letter in dead_letters(amqp_uri)}
    assert by_handler["ops_probe.on_intake_declined"]["reason"] == "rejected"
    assert by_handler["ops_probe.on_intake_declined"]["attempts"] == 1
    assert by_handler["ops_probe.on_intake_declined"]["error"].startswith("Conflict: ")
    assert calls("on_intake_declined", "rejected") == rejected_before + 1
    assert calls("on_intake_declined", "ok") == ok_before

    Downstream.broken = False
    assert cli.main(["dead-letters", "replay", "--event-id", failing["event_id"]]) == cli.EXIT_OK
    wait_until(lambda: Downstream.applied == [failing["event_id"]], message="the chosen letter applied")
    [left] = dead_letters(amqp_uri)
    assert left["event_id"] == rejected["event_id"]

    capsys.readouterr()
    assert cli.main(["dead-letters", "list", "--json"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    [listed] = json.loads(out[out.index("["):])
    assert listed["event_id"] == rejected["event_id"] and listed["reason"] == "rejected"
    assert "p-4" not in out  # ids and reasons, never the body


@pytest.mark.parametrize("body, content_type, encoding", [
    (b"Ana Lopez, 35 mg ketamine", "application/json", "utf-8"),       # not JSON at all
    (b'{"event_id": "e-1", "patient": "Ana Lopez"}', "text/plain", "utf-8"),
    (b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00\x8c\x01x\x94.", "application/x-python-serialize", "binary"),
    (b"[" * 5000 + b"]" * 5000, "application/json", "utf-8"),          # deeper than the decoder goes
])
def test_an_undecodable_message_is_dead_lettered_as_it_came_and_never_logged(
        probe, rabbit_config, caplog, body, content_type, encoding):
    amqp_uri = rabbit_config["AMQP_URI"]
    caplog.set_level(logging.DEBUG)
    publish_bytes(amqp_uri, "sessions", "session.completed", body, content_type, encoding)

    [letter] = wait_until(lambda: dead_letters(amqp_uri), message="the undecodable message dead-lettered")
    assert letter["reason"] == "undecodable"
    assert letter["queue"] == COMPLETED_QUEUE and letter["handler"] == "ops_probe.on_session_completed"
    [(raw, properties)] = raw_messages(amqp_uri, DEAD_LETTER_QUEUE)
    assert raw == body and properties["content_type"] == content_type
    assert properties["application_headers"]["nameko.correlation_id"] == "c-1"
    logged = "\n".join(record.getMessage() + str(record.exc_text or "") for record in caplog.records)
    assert "Ana Lopez" not in logged and "[[[[" not in logged and "ketamine" not in logged

    # The queue moves on: the next event is applied.
    good = publish_event(amqp_uri, "sessions", "session.completed", example_data(SessionCompleted, session_id="s-1"))
    wait_until(lambda: Downstream.applied == [good["event_id"]], message="the next event applied")


def test_a_letter_past_the_delivery_limit_is_listed_replayed_and_discarded(rabbit_config, monkeypatch, capsys):
    """The broker's own dead letter (x-death headers, no clinic headers),
    made here by returning a message to a quorum queue past its limit."""
    amqp_uri = rabbit_config["AMQP_URI"]
    monkeypatch.setenv("AMQP_URI", amqp_uri)
    config = {"QUEUE_TYPE": "quorum", "QUEUE_DELIVERY_LIMIT": 1}
    queue_name = "evt-sessions-session.completed--billing.on_session_completed"
    body = json.dumps({"event_id": "e-77", "type": "session.completed", "data": {"dose_mg": 35}}).encode()
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        dead_letter_queue_for(config)(channel).declare()
        Queue(queue_name, exchange=Exchange(""), routing_key=queue_name, durable=True,
              queue_arguments=consumer_queue_arguments(config))(channel).declare()
        connection.Producer(channel=channel).publish(body, exchange="", routing_key=queue_name,
                                                     content_type="application/json", content_encoding="utf-8")
        for _ in range(2):  # the consumer "dies" holding it, twice
            message = wait_until(lambda: channel.basic_get(queue_name, no_ack=False), message="a delivery")
            channel.basic_reject(message.delivery_tag, requeue=True)

    [letter] = wait_until(lambda: dead_letters(amqp_uri), message="the broker's dead letter")
    assert letter["reason"] == "delivery-limit"
    assert (letter["service"], letter["handler"], letter["queue"]) == (
        "billing", "billing.on_session_completed", queue_name)
    assert letter["event_id"] == "e-77"

    assert cli.main(["dead-letters", "replay", "--letter-id", letter["letter_id"]]) == cli.EXIT_OK
    [(raw, properties)] = wait_until(lambda: raw_messages(amqp_uri, queue_name), message="replayed")
    assert raw == body and "x-death" not in (properties.get("application_headers") or {})

    # Dies again (the look above was its first delivery); this time an
    # operator gives up on it, saying who and why.
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        message = wait_until(lambda: channel.basic_get(queue_name, no_ack=False), message="a delivery")
        channel.basic_reject(message.delivery_tag, requeue=True)
    [letter] = wait_until(lambda: dead_letters(amqp_uri), message="dead again")
    assert cli.main(["dead-letters", "discard", "--letter-id", letter["letter_id"]]) == cli.EXIT_USAGE
    capsys.readouterr()
    assert cli.main(["dead-letters", "discard", "--letter-id", letter["letter_id"], "--actor", "it.oncall",
                     "--reason", "session voided in the EHR (ticket 4411)"]) == cli.EXIT_OK
    assert letter["letter_id"] in capsys.readouterr().out
    assert dead_letters(amqp_uri) == []
    [kept] = list_letters(amqp_uri, discarded=True)
    assert kept.body == body and kept.letter_id == letter["letter_id"]
    assert kept.headers[H_DISCARDED_BY] == "it.oncall"
    assert kept.headers[H_DISCARD_REASON] == "session voided in the EHR (ticket 4411)"
    assert cli.main(["dead-letters", "list", "--discarded"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "it.oncall" in out and letter["letter_id"] in out and "35" not in out.split("\n", 2)[-1]
    [queue] = [q for q in raw_messages(amqp_uri, DISCARDED_QUEUE)]
    assert queue[0] == body


def test_discard_is_audited_in_the_log_with_ids_only(probe, rabbit_config, caplog, capsys):
    amqp_uri = rabbit_config["AMQP_URI"]
    rejected = publish_event(amqp_uri, "intake", "intake.declined", example_data(IntakeDeclined, patient_id="p-9"))
    [letter] = wait_until(lambda: dead_letters(amqp_uri), message="a dead letter")
    caplog.set_level(logging.INFO, logger="common.deadletters")
    assert cli.main(["dead-letters", "discard", "--event-id", rejected["event_id"], "--actor", "admin",
                     "--reason", "patient p-9 asked"]) == cli.EXIT_OK
    [line] = [r for r in caplog.records if "discarded" in r.getMessage()]
    assert letter["letter_id"] in line.getMessage() and "admin" in line.getMessage()
    assert "asked" not in line.getMessage() and line.event_id == rejected["event_id"]
    assert cli.main(["dead-letters", "discard", "--event-id", "nope", "--actor", "admin",
                     "--reason", "x"]) == cli.EXIT_FAILURE


def test_a_letter_whose_handler_queue_is_gone_is_kept_and_old_letters_are_understood(
        rabbit_config, monkeypatch, capsys):
    amqp_uri = rabbit_config["AMQP_URI"]
    monkeypatch.setenv("AMQP_URI", amqp_uri)
    # A letter as written before the one format: a JSON envelope.
    letter = {"service": "retired", "handler": "retired.on_x", "queue": "evt-intake-x--retired.on_x",
              "attempts": 5, "error": "KeyError: 'x'", "failed_at": "2026-11-25T10:00:00Z",
              "body": {"event_id": "e-1", "type": "x"}}
    with Connection(amqp_uri) as connection:
        dead_letter_queue(connection.default_channel).declare()
        connection.Producer().publish(letter, exchange="", routing_key=DEAD_LETTER_QUEUE, serializer="json")
    [listed] = dead_letters(amqp_uri)
    assert (listed["handler"], listed["event_id"], listed["attempts"], listed["reason"]) == (
        "retired.on_x", "e-1", 5, "gave-up")
    assert cli.main(["dead-letters", "replay", "--all"]) == cli.EXIT_ATTENTION
    assert "evt-intake-x--retired.on_x" in capsys.readouterr().err
    assert [kept["handler"] for kept in dead_letters(amqp_uri)] == ["retired.on_x"]


def test_billing_counts_a_session_without_a_dose_as_rejected_in_its_metrics(start_service, rabbit_config):
    """The reported case: the documented alert on outcome="error" must not
    be silenced by counting a dead-lettered event as ok, nor fire for a
    bad event, which is "rejected"."""
    from services.billing.service import BillingService
    from tests.support.billing import completed_session, new_id
    from tests.support.ops import sample, scrape

    billing = start_service(BillingService, BILLING={"OVERDUE_SCAN_SECONDS": 3600})
    url = f"http://{billing.config['WEB_SERVER_ADDRESS']}"
    labels = {"service": "billing", "entrypoint": "on_session_completed", "kind": "event"}

    def count(outcome):
        return sample(scrape(url), "clinic_entrypoint_calls", "clinic_entrypoint_calls_total",
                      outcome=outcome, **labels) or 0

    before = {outcome: count(outcome) for outcome in ("ok", "rejected", "error")}
    data = completed_session(new_id())
    del data["dose_mg"]
    body = publish_event(rabbit_config["AMQP_URI"], "sessions", "session.completed", data)
    [letter] = wait_until(lambda: dead_letters(rabbit_config["AMQP_URI"]), message="dead-lettered")
    assert letter["event_id"] == body["event_id"] and letter["reason"] == "rejected"
    wait_until(lambda: count("rejected") == before["rejected"] + 1, message="counted rejected")
    assert count("ok") == before["ok"] and count("error") == before["error"]

"""A consumer reading events with their producer's contract, on the real
broker: data that does not match the contract, or a version it does not
know, is dead-lettered at once with a reason naming the fields (never their
values) or the version; fields it does not know are ignored."""
import pytest
import sqlalchemy as sa

from common.deadletter_operations import list_dead_letters
from common.handlers import consumes
from common.outbox import EventPublisher, plumbing_metadata
from common.service import ClinicService
from services.sessions.events import SessionCompleted
from tests.support.events import example_data, publish_event
from tests.support.ops import wait_until


class Seen:
    completed: list = []


class ContractProbe(ClinicService):
    """A consumer of sessions' events that exists only in this test."""
    name = "contract_probe"

    @consumes(SessionCompleted)
    def on_session_completed(self, uow, event):
        Seen.completed.append(event.data)


@pytest.fixture
def probe(start_service, tmp_path):
    url = f"sqlite:///{tmp_path}/contract_probe.sqlite3"
    plumbing_metadata.create_all(sa.create_engine(url))
    Seen.completed = []
    return start_service(ContractProbe, DATABASE_URLS={"contract_probe": url})


def letters_by_event(amqp_uri, count):
    letters = wait_until(lambda: len(list_dead_letters(amqp_uri)) >= count and list_dead_letters(amqp_uri),
                         message=f"{count} dead letter(s)")
    return {letter["event_id"]: letter for letter in letters}


def test_bad_data_and_unknown_versions_are_dead_lettered_with_the_reason_and_extra_fields_pass(probe, rabbit_config):
    amqp = rabbit_config["AMQP_URI"]
    missing = example_data(SessionCompleted, clinician_id="dr.confidential")
    del missing["duration_minutes"]
    misspelt = example_data(SessionCompleted)
    misspelt["sesion_id"] = misspelt.pop("session_id")
    mistyped = example_data(SessionCompleted, dose_mg="plenty")

    bad = {
        "missing": publish_event(amqp, "sessions", "session.completed", missing),
        "misspelt": publish_event(amqp, "sessions", "session.completed", misspelt),
        "mistyped": publish_event(amqp, "sessions", "session.completed", mistyped),
    }
    newer = example_data(SessionCompleted)
    body = publish_event(amqp, "sessions", "session.completed", newer)
    unknown_version = {**body, "event_id": body["event_id"] + "-v2", "version": 2}
    EventPublisher(amqp, "sessions").publish("session.completed", unknown_version)
    extra = publish_event(amqp, "sessions", "session.completed",
                          example_data(SessionCompleted, session_id="s-extra", chair_id="chair-9"))

    letters = letters_by_event(amqp, 4)
    assert {letter["reason"] for letter in letters.values()} == {"rejected"}
    assert {letter["attempts"] for letter in letters.values()} == {1}
    assert "duration_minutes" in letters[bad["missing"]["event_id"]]["error"]
    assert "session_id" in letters[bad["misspelt"]["event_id"]]["error"]
    assert "dose_mg" in letters[bad["mistyped"]["event_id"]]["error"]
    for letter in letters.values():
        assert "dr.confidential" not in letter["error"] and "plenty" not in letter["error"]
    assert letters[unknown_version["event_id"]]["error"].endswith("unknown version 2 of session.completed")

    # The version-1 event and the one with a field the probe does not know were applied.
    wait_until(lambda: len(Seen.completed) == 2, message="the good events applied")
    assert {facts.session_id for facts in Seen.completed} == {newer["session_id"], "s-extra"}
    assert extra["data"]["chair_id"] == "chair-9" and not hasattr(Seen.completed[-1], "chair_id")

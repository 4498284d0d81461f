"""An RPC caller gets its answer without waiting for the events the call
committed: they are published once the answer has left, and a process
that dies in between leaves them to the outbox relay. Their rows are then
marked sent a moment later, several with one write."""
from __future__ import annotations

import eventlet
import pytest
import sqlalchemy as sa
from eventlet.event import Event
from nameko.standalone.rpc import ClusterRpcProxy

from common.database import Database
from common.outbox import SentMarks, outbox
from services.intake.service import IntakeService

from tests.support.intake import PATIENT


def database_of(container) -> Database:
    [database] = [ext for ext in container.extensions if isinstance(ext, Database)]
    return database


def unsent_events(databases) -> list[str]:
    with databases.engine("intake").connect() as connection:
        return list(connection.execute(sa.select(outbox.c.event_type).where(outbox.c.sent_at.is_(None))).scalars())


def test_the_answer_leaves_before_the_event_is_published(start_service, rabbit_config, databases, events):
    intake = start_service(IntakeService, OUTBOX_RELAY_INTERVAL=3600)
    events.listen("intake")
    publisher = database_of(intake).publisher
    publish, released, publishing = publisher.publish, Event(), Event()

    def held_publish(*args, **kwargs):
        publishing.send(True)
        released.wait()
        return publish(*args, **kwargs)

    publisher.publish = held_publish
    with ClusterRpcProxy(rabbit_config, context_data={"actor": "frontdesk (front_desk)"}) as cluster:
        with eventlet.Timeout(10):
            patient = cluster.intake.register_patient(PATIENT)
        # Answered while the publish is still held: the caller did not wait for it.
        assert unsent_events(databases) == ["patient.registered"]
        with eventlet.Timeout(10):
            publishing.wait()
        released.send(True)
    events.wait_for("patient.registered", lambda event: event["data"]["patient_id"] == patient["patient_id"])
    with eventlet.Timeout(10):
        while unsent_events(databases):
            eventlet.sleep(0.05)


def test_an_event_whose_publish_fails_after_the_answer_is_left_to_the_relay(start_service, rabbit_config,
                                                                             databases, events):
    intake = start_service(IntakeService, OUTBOX_RELAY_INTERVAL=0.2)
    events.listen("intake")
    publisher = database_of(intake).publisher
    publish, failed = publisher.publish, []

    def failing_once(*args, **kwargs):
        if not failed:
            failed.append(True)
            raise ConnectionError("the broker went away")
        return publish(*args, **kwargs)

    publisher.publish = failing_once
    with ClusterRpcProxy(rabbit_config, context_data={"actor": "frontdesk (front_desk)"}) as cluster:
        with eventlet.Timeout(10):
            patient = cluster.intake.register_patient(PATIENT)
    # The worker's own publish (after the answer) failed and released its
    # row; the relay published it.
    events.wait_for("patient.registered", lambda event: event["data"]["patient_id"] == patient["patient_id"])
    assert failed


def test_published_events_are_marked_sent_together_and_when_the_service_stops(start_service, rabbit_config,
                                                                              databases, events):
    intake = start_service(IntakeService, OUTBOX_RELAY_INTERVAL=3600, OUTBOX_MARK_INTERVAL=3600)
    events.listen("intake")
    marks = database_of(intake).sent_marks
    with ClusterRpcProxy(rabbit_config, context_data={"actor": "frontdesk (front_desk)"}) as cluster:
        for n in range(2):
            cluster.intake.register_patient({**PATIENT, "given_name": f"Mark{n}"})
    with eventlet.Timeout(10):
        while len(marks) < 2:
            eventlet.sleep(0.05)
    # Published, claimed, not marked yet: no relay takes them meanwhile.
    assert unsent_events(databases) == ["patient.registered", "patient.registered"]
    intake.stop()
    assert unsent_events(databases) == []


def test_marks_that_could_not_be_written_are_kept_for_the_next_try():
    def unreachable_database():
        raise ConnectionError("the database went away")

    marks = SentMarks()
    marks.add(["e1", "e2"])
    with pytest.raises(ConnectionError):
        marks.flush(unreachable_database)
    marks.add(["e3"])
    assert len(marks) == 3

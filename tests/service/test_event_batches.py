"""Events that are waiting when a handler gets to them are applied several
per transaction (common.batching), through the real broker: fewer
transactions than events, every message acked after its commit, and a bad
event in a batch dead-lettered alone while the others are applied."""
from __future__ import annotations

import sqlalchemy as sa
from kombu import Connection, Queue
from nameko.standalone.events import get_event_exchange

from common.deadletter_operations import list_dead_letters
from common.handlers import handler_queue_name
from services.billing.service import BillingService
from tests.support.billing import completed_session, new_id, publish, registered_patient, scalar, wait_until
from tests.support.net import free_port


def handler_queue(producer: str, event_type: str, method: str) -> Queue:
    return Queue(handler_queue_name(producer, event_type, "billing", method),
                 exchange=get_event_exchange(producer, {}), routing_key=event_type, durable=True)


def stopped_billing(container_factory, config):
    """A billing process that has run once (its fee schedule is stored)
    and is stopped, its queues left to fill."""
    billing = container_factory(BillingService, {**config, "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}"})
    billing.start()
    billing.stop()
    return container_factory(BillingService, {**config, "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}"})


def waiting_in(config, queue: Queue) -> int:
    with Connection(config["AMQP_URI"]) as connection:
        return queue(connection.default_channel).queue_declare(passive=True).message_count


def transactions(databases, handler: str) -> int:
    # A batch claims its events with one statement and one timestamp.
    return scalar(databases, "SELECT count(DISTINCT processed_at) FROM processed_events WHERE handler = :h",
                  h=handler)


def test_sessions_waiting_in_the_queue_are_charged_in_fewer_transactions_than_events(
        clinic_config, container_factory, databases):
    queue = handler_queue("sessions", "session.completed", "on_session_completed")
    billing = stopped_billing(container_factory, clinic_config)
    patient_ids = [new_id() for _ in range(20)]
    for patient_id in patient_ids:
        publish(clinic_config, "sessions", "session.completed", completed_session(patient_id))
    assert waiting_in(clinic_config, queue) == 20

    billing.start()
    wait_until(lambda: scalar(databases, "SELECT count(DISTINCT session_id) FROM charges") == 20, timeout=30)
    assert transactions(databases, "billing.on_session_completed") < 20
    billing.stop()  # anything left unacked would go back to the queue now
    assert waiting_in(clinic_config, queue) == 0


def test_a_bad_event_in_a_batch_is_dead_lettered_alone_and_the_others_are_applied(
        clinic_config, container_factory, databases):
    queue = handler_queue("intake", "patient.registered", "on_patient_registered")
    billing = stopped_billing(container_factory, clinic_config)
    good = [new_id() for _ in range(9)]
    for patient_id in good[:4]:
        publish(clinic_config, "intake", "patient.registered", registered_patient(patient_id))
    bad = publish(clinic_config, "intake", "patient.registered", registered_patient(new_id(), date_of_birth="soon"))
    for patient_id in good[4:]:
        publish(clinic_config, "intake", "patient.registered", registered_patient(patient_id))

    billing.start()
    count = sa.text("SELECT count(*) FROM patients WHERE patient_id IN :ids").bindparams(
        sa.bindparam("ids", expanding=True))

    def applied():
        with databases.engine("billing").connect() as connection:
            return connection.execute(count, {"ids": good}).scalar_one()

    wait_until(lambda: applied() == 9, timeout=30)
    letters = wait_until(lambda: list_dead_letters(clinic_config["AMQP_URI"]))
    assert [(letter["event_id"], letter["reason"]) for letter in letters] == [(bad["event_id"], "rejected")]
    billing.stop()
    assert waiting_in(clinic_config, queue) == 0

"""Two billing replicas share a burst of 200 session completions (some of
them delivered twice): every session is charged exactly once."""
import time

import sqlalchemy as sa
from kombu import Connection

from common.events import envelope
from common.handlers import handler_queue_name
from common.outbox import EventPublisher
from services.billing.service import BillingService
from tests.support.billing import completed_session, new_id, wait_until

SESSIONS = 200


def consumers_of(amqp_uri: str, queue: str) -> int:
    """How many consumers RabbitMQ sees on a queue (a passive declare)."""
    with Connection(amqp_uri) as connection:
        return connection.default_channel.queue_declare(queue, passive=True).consumer_count


def test_two_replicas_charge_each_of_200_sessions_once(start_service, databases):
    first = start_service(BillingService)
    start_service(BillingService)  # same service name: both consume the same queues
    queue = handler_queue_name("sessions", "session.completed", "billing", "on_session_completed")
    # Competing consumers: both replicas read the one queue.
    assert consumers_of(first.config["AMQP_URI"], queue) == 2
    publisher = EventPublisher(first.config["AMQP_URI"], "sessions")
    bodies = [envelope("session.completed", completed_session(new_id()), producer="sessions")
              for _ in range(SESSIONS)]
    started = time.monotonic()
    for body in bodies:
        publisher.publish("session.completed", body)
    for body in bodies[::4]:  # redelivered, as RabbitMQ may
        publisher.publish("session.completed", body)

    engine = databases.engine("billing")

    def charged_sessions():
        with engine.connect() as connection:
            return connection.execute(sa.text(
                "SELECT count(DISTINCT session_id) FROM charges")).scalar_one()

    wait_until(lambda: charged_sessions() == SESSIONS, timeout=25)
    with engine.connect() as connection:
        per_session = connection.execute(sa.text(
            "SELECT session_id, count(*), array_agg(code ORDER BY code) FROM charges GROUP BY session_id")).all()
        handled = connection.execute(sa.text(
            "SELECT count(*) FROM processed_events WHERE handler = 'billing.on_session_completed'")).scalar_one()
    assert len(per_session) == SESSIONS
    assert all(count == 2 and codes == ["96365", "J3490"] for _, count, codes in per_session)
    assert handled == SESSIONS
    assert time.monotonic() - started < 30

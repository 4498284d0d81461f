"""The relay drains a backlog (what a broker outage leaves) by publishing a
batch and then waiting once for its confirms, on the real broker."""
from __future__ import annotations

import json
import uuid

import sqlalchemy as sa
from kombu import Connection, Exchange, Queue
from sqlalchemy.orm import sessionmaker

from common import outbox
from common.engines import make_engine
from common.events import envelope, utcnow
from tests.support.net import free_port


def backlog_of(tmp_path, count: int):
    engine = make_engine(f"sqlite:///{tmp_path / 'outbox.sqlite3'}")
    outbox.plumbing_metadata.create_all(engine)
    bodies = [envelope("patient.registered", {"patient_id": str(uuid.uuid4()), "n": n}, producer="relaytest")
              for n in range(count)]
    with engine.begin() as connection:
        connection.execute(outbox.outbox.insert(), [
            {"event_id": body["event_id"], "event_type": body["type"], "body": json.dumps(body),
             "created_at": utcnow()} for body in bodies])
    return engine, bodies


def unsent(engine) -> list:
    with engine.connect() as connection:
        return connection.execute(sa.select(outbox.outbox.c.attempts, outbox.outbox.c.claimed_until)
                                  .where(outbox.outbox.c.sent_at.is_(None))).all()


def test_a_backlog_is_published_in_order_with_one_wait_for_confirms_per_batch(tmp_path, rabbit_config):
    engine, bodies = backlog_of(tmp_path, 120)
    amqp_uri = rabbit_config["AMQP_URI"]
    with Connection(amqp_uri) as connection:
        queue = Queue("relaytest.listener", Exchange("relaytest.events", type="topic", durable=True),
                      routing_key="#", channel=connection.default_channel)
        queue.declare()
    publisher = outbox.EventPublisher(amqp_uri, "relaytest")
    one_by_one, batches = [], []
    publish, publish_batch = publisher.publish, publisher.publish_batch
    publisher.publish = lambda *args: one_by_one.append(args) or publish(*args)
    publisher.publish_batch = lambda events: batches.append(len(events)) or publish_batch(events)
    factory = sessionmaker(engine)
    try:
        assert outbox.relay_pending(factory, publisher, limit=50) == 50
        assert outbox.relay_pending(factory, publisher, limit=50) == 50
        assert outbox.relay_pending(factory, publisher, limit=50) == 20
        assert outbox.relay_pending(factory, publisher, limit=50) == 0
    finally:
        publisher.close()
    assert (batches, one_by_one) == ([50, 50, 20], [])
    assert unsent(engine) == []
    received = []
    with Connection(amqp_uri) as connection:
        channel = connection.default_channel
        while (message := channel.basic_get("relaytest.listener", no_ack=True)) is not None:
            received.append(json.loads(message.body)["event_id"])
    assert received == [body["event_id"] for body in bodies]


def test_a_batch_the_broker_does_not_take_goes_back_to_the_relay(tmp_path):
    engine, _ = backlog_of(tmp_path, 10)
    publisher = outbox.EventPublisher(f"amqp://guest:guest@127.0.0.1:{free_port()}/", "relaytest")
    try:
        assert outbox.relay_pending(sessionmaker(engine), publisher) == 0
    finally:
        publisher.close()
    rows = unsent(engine)
    assert len(rows) == 10
    assert all(attempts == 1 and claimed_until is None for attempts, claimed_until in rows)

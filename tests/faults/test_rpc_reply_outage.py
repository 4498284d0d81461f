"""Issue 10.1, the moment that used to kill a service: the broker goes away
while a worker is about to publish its RPC reply. nameko kills the whole
container for it (``killing <ServiceContainer [intake]> due to [Errno 111]
ECONNREFUSED``). The clinic's RPC entrypoint keeps the container alive,
answers the caller once the broker is back, and does not run the call a
second time when the broker hands the unacknowledged request over again."""
from __future__ import annotations

import json
import uuid

import eventlet
import pytest
from eventlet.event import Event
from kombu import Connection, Exchange, Queue
from nameko.standalone.rpc import ServiceRpcProxy

from common.handlers import rpc
from tests.support.ops import wait_until

RPC_EXCHANGE = Exchange("nameko-rpc", type="topic", durable=True)


class Desk:
    """What the test controls: when the worker may answer, and how often
    the method ran."""

    def __init__(self):
        self.entered = Event()
        self.release = Event()
        self.runs = 0


desk = Desk()


class Clerk:
    name = "clerk"

    @rpc
    def register(self, ticket):
        desk.runs += 1
        if not desk.entered.ready():
            desk.entered.send()
        desk.release.wait()
        return {"ticket": ticket}

    @rpc
    def ping(self):
        return "pong"


@pytest.fixture(autouse=True)
def fresh_desk():
    global desk
    desk = Desk()
    yield
    if not desk.release.ready():
        desk.release.send()


class Caller:
    """An RPC caller with a durable reply queue of its own, so a reply
    published after a broker restart is still there to be read."""

    def __init__(self, amqp_uri: str):
        self.amqp_uri = amqp_uri
        self.routing_key = f"caller-{uuid.uuid4().hex[:8]}"
        self.queue = Queue(f"rpc.reply-test-{self.routing_key}", exchange=RPC_EXCHANGE,
                           routing_key=self.routing_key, durable=True)

    def call(self, service: str, method: str, *args) -> str:
        correlation_id = str(uuid.uuid4())
        with Connection(self.amqp_uri) as connection:
            producer = connection.Producer()
            producer.publish({"args": list(args), "kwargs": {}}, exchange=RPC_EXCHANGE,
                             routing_key=f"{service}.{method}", reply_to=self.routing_key,
                             correlation_id=correlation_id, serializer="json", delivery_mode=2,
                             declare=[self.queue])
        return correlation_id

    def replies(self) -> list[dict]:
        found = []
        try:
            with Connection(self.amqp_uri, connect_timeout=2) as connection:
                channel = connection.channel()
                while True:
                    message = channel.basic_get(self.queue.name, no_ack=True)
                    if message is None:
                        break
                    found.append({"correlation_id": message.properties.get("correlation_id"),
                                  **json.loads(message.body)})
        except Exception:
            return []
        return found


def test_the_broker_going_away_while_a_worker_answers_leaves_the_service_running(rabbit_node, container_factory):
    container = container_factory(Clerk, {"AMQP_URI": rabbit_node.amqp_uri})
    container.start()
    caller = Caller(rabbit_node.amqp_uri)
    correlation_id = caller.call("clerk", "register", "A-1")
    desk.entered.wait()

    rabbit_node.stop()
    desk.release.send()  # the worker answers into a broker that is gone
    eventlet.sleep(5)
    assert not container._died.ready(), "the service container was killed"

    rabbit_node.start()
    replies = []
    wait_until(lambda: replies.extend(caller.replies()) or replies, timeout=60, message="the reply")
    assert replies[0]["correlation_id"] == correlation_id
    assert replies[0]["result"] == {"ticket": "A-1"} and replies[0]["error"] is None
    # The broker gave the unacknowledged request back; it was answered, not run again.
    eventlet.sleep(1)
    assert desk.runs == 1
    assert not container._died.ready()
    with ServiceRpcProxy("clerk", {"AMQP_URI": rabbit_node.amqp_uri}, timeout=30) as clerk:
        assert clerk.ping() == "pong"


def test_a_broker_crash_while_a_worker_answers_leaves_the_service_running(rabbit_node, container_factory):
    container = container_factory(Clerk, {"AMQP_URI": rabbit_node.amqp_uri})
    container.start()
    caller = Caller(rabbit_node.amqp_uri)
    caller.call("clerk", "register", "B-1")
    desk.entered.wait()

    rabbit_node.kill()
    desk.release.send()
    eventlet.sleep(5)
    assert not container._died.ready(), "the service container was killed"

    rabbit_node.start()
    with ServiceRpcProxy("clerk", {"AMQP_URI": rabbit_node.amqp_uri}, timeout=30) as clerk:
        assert clerk.ping() == "pong"
    assert not container._died.ready()


def test_a_service_asked_to_stop_while_the_broker_is_away_stops(rabbit_node, container_factory):
    # `docker stop` or Ctrl-C during an outage: the consumers' connection is
    # already gone, so there is nothing to cancel on the broker and nothing
    # to wait for.
    container = container_factory(Clerk, {"AMQP_URI": rabbit_node.amqp_uri})
    container.start()
    rabbit_node.stop()
    eventlet.sleep(2)
    with eventlet.Timeout(30, AssertionError("the service did not stop without its broker")):
        container.stop()

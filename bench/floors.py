"""What the framework and the broker cost on their own: the floors the
suite (``bench/run``) measures beside the clinic's figures.

* ``EchoService``: a nameko RPC that returns its argument;
* ``AuditedEchoService``: the same, after writing one row to PostgreSQL and
  waiting for its commit to be durable: the least an audited read can cost
  (issue 12's rule 3: no answer without its audit row, even after a crash);
* ``HttpFloor``: a nameko ``@http`` ping, and an ``@http`` handler that
  calls the echo RPC (the least any gateway route can cost);
* ``python bench/floors.py kombu-echo AMQP_URI``: a bare kombu replier;
* ``KombuCaller``, ``confirmed_publish``, ``consume``: the client side.

Nothing of the clinic is imported here.
"""
from __future__ import annotations

import json
import os
import sys
import time
import uuid

from kombu import Connection, Exchange, Producer, Queue
from nameko.extensions import DependencyProvider
from nameko.rpc import RpcProxy, rpc
from nameko.web.handlers import http

ECHO_QUEUE = "bench.kombu-echo"


class EchoService:
    name = "bench_echo"

    @rpc
    def echo(self, value):
        return value


class DurableRow(DependencyProvider):
    """One autocommit psycopg2 connection to ``BENCH_AUDIT_DATABASE_URL``,
    waiting cooperatively (the service runs under eventlet)."""

    def setup(self):
        import psycopg2
        import psycopg2.extensions
        import psycopg2.extras

        psycopg2.extensions.set_wait_callback(psycopg2.extras.wait_select)
        self.connection = psycopg2.connect(os.environ["BENCH_AUDIT_DATABASE_URL"])
        self.connection.autocommit = True
        with self.connection.cursor() as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS bench_access (id bigserial PRIMARY KEY, "
                           "record_id text NOT NULL, at timestamptz NOT NULL DEFAULT now())")

    def stop(self):
        self.connection.close()

    def get_dependency(self, worker_ctx):
        def write(record_id: str) -> None:
            with self.connection.cursor() as cursor:
                cursor.execute("INSERT INTO bench_access (record_id) VALUES (%s)", (record_id,))
        return write


class AuditedEchoService:
    name = "bench_audited_echo"

    write_row = DurableRow()

    @rpc
    def echo(self, value):
        self.write_row(value)
        return value


class HttpFloor:
    name = "bench_http"

    echo_rpc = RpcProxy("bench_echo")

    @http("GET", "/ping")
    def ping(self, request):
        return 200, {"Content-Type": "application/json"}, '{"ok": true}'

    @http("GET", "/echo/<string:value>")
    def echo(self, request, value):
        return 200, {"Content-Type": "application/json"}, json.dumps({"value": self.echo_rpc.echo(value)})


def kombu_echo_server(amqp_uri: str) -> None:
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        producer = Producer(channel)
        queue = Queue(ECHO_QUEUE, auto_delete=True, channel=channel)
        queue.declare()

        def answer(body, message):
            producer.publish(body, routing_key=message.properties["reply_to"],
                             correlation_id=message.properties["correlation_id"], serializer="json")
            message.ack()

        with connection.Consumer(queue, callbacks=[answer]):
            while True:
                connection.drain_events()


class KombuCaller:
    """Bare kombu request/reply: publish with reply_to, wait for the answer."""

    def __init__(self, amqp_uri: str):
        self.connection = Connection(amqp_uri)
        self.channel = self.connection.channel()
        self.producer = Producer(self.channel)
        self.reply_queue = Queue(f"bench.reply-{uuid.uuid4().hex[:8]}", exclusive=True, auto_delete=True,
                                 channel=self.channel)
        self.reply_queue.declare()
        self.answers = {}
        self.consumer = self.connection.Consumer(self.reply_queue, callbacks=[self._answered], no_ack=True)
        self.consumer.consume()

    def _answered(self, body, message):
        self.answers[message.properties["correlation_id"]] = body

    def call(self, value):
        correlation_id = uuid.uuid4().hex
        self.producer.publish({"value": value}, routing_key=ECHO_QUEUE, reply_to=self.reply_queue.name,
                              correlation_id=correlation_id, serializer="json")
        while correlation_id not in self.answers:
            self.connection.drain_events(timeout=30)
        return self.answers.pop(correlation_id)

    def close(self):
        self.connection.close()


def confirmed_publish(amqp_uri: str, queue_name: str, body: dict, count: int) -> float:
    """Persistent messages to a durable queue, each confirmed before the
    next (what a service's event publisher does); messages/s."""
    exchange = Exchange(f"{queue_name}.x", type="topic", durable=True)
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        channel = connection.channel()
        Queue(queue_name, exchange, routing_key="#", durable=True, channel=channel).declare()
        producer = Producer(channel, exchange=exchange)
        began = time.perf_counter()
        for _ in range(count):
            producer.publish(body, routing_key="bench", serializer="json", delivery_mode=2)
        return count / (time.perf_counter() - began)


def consume(amqp_uri: str, queue_name: str, count: int, prefetch: int = 10) -> float:
    """Take ``count`` messages from the queue, acking each; messages/s."""
    taken = 0
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        channel.basic_qos(0, prefetch, False)
        queue = Queue(queue_name, channel=channel)

        def take(body, message):
            nonlocal taken
            json.dumps(body)
            message.ack()
            taken += 1

        began = time.perf_counter()
        with connection.Consumer(queue, callbacks=[take], channel=channel):
            while taken < count:
                connection.drain_events(timeout=30)
        return count / (time.perf_counter() - began)


if __name__ == "__main__":
    if sys.argv[1:2] == ["kombu-echo"]:
        kombu_echo_server(sys.argv[2])

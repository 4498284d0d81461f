"""Staying up while the broker restarts.

nameko kills the whole service container when a worker cannot publish its
RPC reply or acknowledge a message because the broker has just gone away
(``killing <ServiceContainer [intake]> due to [Errno 111] ECONNREFUSED``),
and ``clinic run`` exits with it. The broker going away is routine (an
upgrade, a node restart, a crash); what nameko does next is not needed:

- its consumers already reconnect by themselves (kombu's ``ConsumerMixin``
  retries for ever), and the broker hands every unacknowledged message back
  to the queue when the connection that held it drops;
- so an acknowledgement that cannot be sent can simply be dropped, and a
  reply that cannot be published can wait for the request to come back.

``SteadyQueueConsumer`` drops acks and requeues the broker made moot, tries
the broker again at least every few seconds, and lets the service stop
while the broker is away. ``AnsweringRpcConsumer`` publishes a reply once (with a short retry) and,
when that fails, keeps it: the request is given back by the broker
(``redelivered``) when it returns, and is then answered from what was kept
instead of being run a second time, which would register a second patient
or take a second payment. What is kept is bounded in number and age.
The caller gets its answer if it is still waiting (the gateway waits 30 s);
one that gave up meanwhile ignores it. ``RpcProxy`` is nameko's, with a reply
listener on the steady consumer and a reply queue that survives the loss of
a cluster node, for callers such as the gateway.

``AMQP_URI`` may name several nodes of a cluster separated by ``;`` (kombu
moves on to the next when one fails); ``redacted`` hides every password of
such a list in log lines.

Events never depended on this: they wait in each service's outbox until the
relay can publish them (``common.outbox``).
"""
from __future__ import annotations

import logging
import sys
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field

import eventlet
import kombu.serialization
from eventlet.event import Event
from nameko.amqp.publish import Publisher
from nameko.constants import AMQP_SSL_CONFIG_KEY, AMQP_URI_CONFIG_KEY, LOGIN_METHOD_CONFIG_KEY
from nameko.exceptions import UnserializableValueError, serialize
from nameko.messaging import QueueConsumer
from nameko.rpc import ReplyListener, RpcConsumer, RpcProxy as NamekoRpcProxy, get_rpc_exchange
from nameko.utils import sanitize_url

log = logging.getLogger(__name__)

# A reply is retried briefly in place (a connection that is being
# re-established); a longer outage is bridged by the request's redelivery.
REPLY_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.5, "interval_step": 0.5, "interval_max": 1.0}
# How long, and how many, answered requests are remembered. A request comes
# back when the broker returns; RabbitMQ drops a caller's reply queue after
# nameko's 5 minutes without it anyway.
ANSWER_MEMORY_SECONDS = 600
ANSWER_MEMORY_SIZE = 2000
# The longest pause between two attempts to reach the broker again.
RECONNECT_INTERVAL_MAX = 5
# Before handing a request back to a broker that is still connected but
# refused the reply, so the two do not spin.
REQUEUE_PAUSE_SECONDS = 1.0


class ConsumerStopping(Exception):
    """The service is stopping while its consumer waits for the broker."""


class SteadyQueueConsumer(QueueConsumer):
    """nameko's queue consumer, minus the kill when an ack or requeue finds
    the connection gone (the broker has already taken the message back and
    delivers it again), reconnecting at least every few seconds rather than
    backing off to kombu's 30, and able to stop or be killed while the
    broker is away (nameko's waits for the broker for ever)."""

    @contextmanager
    def establish_connection(self):
        with self.create_connection() as connection:
            connection.ensure_connection(
                self.on_connection_error, self.connect_max_retries,
                interval_start=1, interval_step=1, interval_max=RECONNECT_INTERVAL_MAX,
                callback=self._while_disconnected)
            yield connection

    def _while_disconnected(self):
        """Called about every second while the broker is away. nameko lets
        an entrypoint stop only once its consumer is cancelled on the
        broker, so a service told to stop during an outage would wait for
        the broker; its consumers died with the connection, so they are let
        go at once, and the consumer gives up when none is left."""
        if self._pending_remove_providers:
            for provider, removed in list(self._pending_remove_providers.items()):
                self._pending_remove_providers.pop(provider, None)
                self._consumers.pop(provider, None)
                removed.send()
            if not self._consumers:
                self.should_stop = True
        if self.should_stop:
            raise ConsumerStopping()

    def run(self, *args, **kwargs):
        try:
            super().run(*args, **kwargs)
        except ConsumerStopping:
            pass

    def on_connection_error(self, exc, interval):
        # nameko's own line would redact only the first password of an
        # AMQP_URI that names several nodes.
        log.warning("Error connecting to broker at %s (%s). Retrying in %s seconds.",
                    redacted(self.amqp_uri), exc, interval)

    def ack_message(self, message):
        self._settle(message, "ack")

    def requeue_message(self, message):
        self._settle(message, "requeue")

    def _settle(self, message, how: str) -> None:
        channel = message.channel
        if channel is None or not getattr(channel, "connection", None):
            return
        try:
            getattr(message, how)()
        except Exception as exc:  # the connection dropped between the check and the write
            log.warning("message %s not sent, the broker connection is gone (%s); the broker redelivers it",
                        how, type(exc).__name__)


@dataclass
class Answer:
    """The outcome of one RPC request, kept for a while in case the broker
    delivers the request again."""

    done: Event = field(default_factory=Event)
    reply: "Reply | None" = None
    sent: bool = False
    at: float = field(default_factory=time.monotonic)


class Answers:
    """Requests this process has run or is running, by caller and
    correlation id, so a redelivered copy is not run again."""

    def __init__(self, max_age: float = ANSWER_MEMORY_SECONDS, max_size: int = ANSWER_MEMORY_SIZE):
        self.max_age = max_age
        self.max_size = max_size
        self.entries: OrderedDict[tuple[str, str], Answer] = OrderedDict()

    def begin(self, key) -> Answer:
        self._forget_old()
        answer = self.entries[key] = Answer()
        return answer

    def get(self, key) -> Answer | None:
        return self.entries.get(key)

    def _forget_old(self) -> None:
        cutoff = time.monotonic() - self.max_age
        while self.entries:
            key, answer = next(iter(self.entries.items()))
            # A request still running is never forgotten by age: its
            # redelivery must wait for it, not run it a second time.
            too_many = len(self.entries) >= self.max_size
            if (answer.at < cutoff or too_many) and (answer.done.ready() or too_many):
                self.entries.popitem(last=False)
            else:
                break


def redacted(amqp_uri: str) -> str:
    """An AMQP_URI fit for a log line: every node's password hidden (the
    URI may name several nodes, separated by ``;``)."""
    return ";".join(sanitize_url(part) for part in amqp_uri.split(";"))


def request_key(message) -> tuple[str, str] | None:
    reply_to = message.properties.get("reply_to")
    correlation_id = message.properties.get("correlation_id")
    if reply_to and correlation_id:
        return (reply_to, correlation_id)
    return None


@dataclass
class Reply:
    """What nameko's ``Responder`` would publish, built apart from
    publishing it so it can be published again."""

    payload: dict
    serializer: str
    routing_key: str
    correlation_id: str | None
    result: object
    exc_info: tuple | None

    @classmethod
    def of(cls, message, result, exc_info) -> "Reply":
        error = serialize(exc_info[1]) if exc_info is not None else None
        # Answered the way it was asked; a request without a known content
        # type (not from a nameko caller) is answered in JSON.
        content_type = message.properties.get("content_type")
        serializer = kombu.serialization.registry.type_to_name.get(content_type, "json")
        try:
            kombu.serialization.dumps(result, serializer)
        except Exception:
            exc_info = sys.exc_info()
            error = serialize(UnserializableValueError(result))
            result = None
        return cls({"result": result, "error": error}, serializer, message.properties.get("reply_to"),
                   message.properties.get("correlation_id"), result, exc_info)


class AnsweringRpcConsumer(RpcConsumer):
    """nameko's RPC consumer that survives the broker going away while it
    answers, and answers a redelivered request from memory."""

    queue_consumer = SteadyQueueConsumer()

    def setup(self):
        super().setup()
        self.answers = Answers()

    def handle_message(self, body, message):
        key = request_key(message)
        if key is not None:
            earlier = self.answers.get(key) if message.delivery_info.get("redelivered") else None
            if earlier is not None:
                self._answer_again(earlier, message)
                return
            self.answers.begin(key)
        super().handle_message(body, message)

    def handle_result(self, message, result, exc_info):
        reply = Reply.of(message, result, exc_info)
        sent = self._publish(reply)
        key = request_key(message)
        answer = self.answers.get(key) if key is not None else None
        if answer is not None:
            answer.reply, answer.sent, answer.at = reply, sent, time.monotonic()
            answer.done.send(True)
        self._settle(message, sent)
        return reply.result, reply.exc_info

    def _answer_again(self, answer: Answer, message) -> None:
        # Already answered (the ack was what got lost), or still running
        # (the broker came back before the worker finished): either way,
        # the request is not run again.
        answer.done.wait()
        if not answer.sent:
            answer.sent = self._publish(answer.reply)
            answer.at = time.monotonic()
        self._settle(message, answer.sent)

    def _settle(self, message, sent: bool) -> None:
        if sent:
            self.queue_consumer.ack_message(message)
        else:
            eventlet.sleep(REQUEUE_PAUSE_SECONDS)
            self.queue_consumer.requeue_message(message)

    def _publish(self, reply: Reply) -> bool:
        config = self.container.config
        try:
            Publisher(config[AMQP_URI_CONFIG_KEY], ssl=config.get(AMQP_SSL_CONFIG_KEY),
                      login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
                      retry_policy=REPLY_RETRY_POLICY).publish(
                reply.payload, serializer=reply.serializer, exchange=get_rpc_exchange(config),
                routing_key=reply.routing_key, correlation_id=reply.correlation_id)
            return True
        except Exception as exc:  # the broker is away: the request comes back with it
            log.warning("RPC reply not published (%s); it is sent when the broker redelivers the request",
                        type(exc).__name__)
            return False


class SteadyReplyListener(ReplyListener):
    """nameko's reply listener on the steady consumer, with a reply queue
    that is not durable. A durable classic queue lives on one node of a
    cluster and cannot be declared again while that node is down (NOT_FOUND,
    "home node ... is down"), which would leave the caller without replies
    until the node returns; a transient one is dropped with its node and
    made again on whichever node the caller reconnects to. Replies in
    flight at that moment are lost either way: the caller times out."""

    queue_consumer = SteadyQueueConsumer()

    def setup(self):
        super().setup()
        self.queue.durable = False


class RpcProxy(NamekoRpcProxy):
    """nameko's ``RpcProxy`` whose reply listener outlives a broker restart."""

    rpc_reply_listener = SteadyReplyListener()

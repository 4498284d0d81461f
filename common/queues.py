"""How the clinic declares the queues its services consume from.

``QUEUE_TYPE: classic`` keeps nameko's own declarations. ``QUEUE_TYPE:
quorum`` declares every durable event-handler queue and every
``rpc-<service>`` queue as a RabbitMQ quorum queue: replicated over a
cluster, and with a ``x-delivery-limit``, so a message that kills its
consumer again and again (the process dies before it can ack) is moved by
the broker to ``clinic.dead-letters`` instead of being redelivered for ever
(on classic queues the event handler counts redeliveries itself:
``common.handlers.RetryingEventHandler``).
RPC reply queues stay nameko's auto-deleted classic queues: they belong to
one caller and die with it.

A queue keeps the type it was first declared with: RabbitMQ refuses to
redeclare a classic queue as quorum (PRECONDITION_FAILED), so switching an
existing broker is an operator's step (docs/operations.md, "Queue types").
"""
from __future__ import annotations

from kombu import Exchange, Queue
from nameko.events import SERVICE_POOL, EventHandler
from nameko.rpc import Rpc

from common.broker import AnsweringRpcConsumer, SteadyQueueConsumer

DEAD_LETTER_QUEUE = "clinic.dead-letters"

QUEUE_TYPES = ("classic", "quorum")
DEFAULT_QUEUE_TYPE = "classic"
# Deliveries of one message before the broker gives up on it. Every
# redelivery means a consumer died holding it (or lost its connection), so
# a healthy message never comes near this.
DEFAULT_DELIVERY_LIMIT = 10


def queue_type(config) -> str:
    value = str(config.get("QUEUE_TYPE") or DEFAULT_QUEUE_TYPE).strip().lower()
    if value not in QUEUE_TYPES:
        raise ValueError(f"QUEUE_TYPE must be one of {', '.join(QUEUE_TYPES)}, not {value!r}")
    return value


def delivery_limit(config) -> int:
    return int(config.get("QUEUE_DELIVERY_LIMIT") or DEFAULT_DELIVERY_LIMIT)


def type_arguments(config) -> dict:
    """Arguments every durable clinic queue is declared with (the
    dead-letter and retry queues included): none for classic queues, so
    queues declared before this setting existed still match."""
    return {"x-queue-type": "quorum"} if queue_type(config) == "quorum" else {}


def consumer_queue_arguments(config) -> dict:
    """Arguments of a queue a service consumes from."""
    if queue_type(config) != "quorum":
        return {}
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": delivery_limit(config),
        # The default exchange routes by queue name: straight into the
        # clinic's dead-letter queue, with the broker's x-death headers.
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": DEAD_LETTER_QUEUE,
        # Without these the broker may drop a letter it failed to route.
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def dead_letter_queue_for(config=None) -> Queue:
    return Queue(DEAD_LETTER_QUEUE, exchange=Exchange(""), routing_key=DEAD_LETTER_QUEUE, durable=True,
                 queue_arguments=type_arguments(config or {}))


class QueueTypeMismatch(Exception):
    """A queue already exists with another type or other arguments."""


class ClinicQueueConsumer(SteadyQueueConsumer):
    """nameko's queue consumer, shared by the clinic's event handlers and
    RPC entrypoints of one service. A message it cannot decode goes to the
    dead-letter queue (``on_decode_error``) instead of being acked away with
    its body quoted in a log line."""

    def start(self):
        self.check_declarations()
        super().start()

    def check_declarations(self):
        """Declare this service's queues once before consuming: a queue that
        exists with other arguments (a classic queue and QUEUE_TYPE=quorum,
        or the other way round) stops the service here with a clear error,
        where kombu would otherwise retry the declaration for ever."""
        from amqp.exceptions import PreconditionFailed
        from kombu import Connection

        try:
            with Connection(self.amqp_uri, connect_timeout=5) as connection:
                connection.ensure_connection(max_retries=1)
                for provider in list(self._providers):
                    queue = getattr(provider, "queue", None)
                    if queue is None:
                        continue
                    channel = connection.channel()
                    try:
                        queue(channel).declare()
                    except PreconditionFailed as exc:
                        raise QueueTypeMismatch(
                            f"queue {queue.name} exists with other arguments than "
                            f"QUEUE_TYPE={queue_type(self.container.config)} declares ({exc.reply_text}); "
                            f"see docs/operations.md, 'Queue types'") from None
                    finally:
                        try:
                            channel.close()
                        except Exception:
                            pass
        except QueueTypeMismatch:
            raise
        except Exception:
            pass  # the broker is away: the consumer keeps trying, as before

    def on_consume_ready(self, connection, channel, consumers, **kwargs):
        # The broker dead-letters into this queue by name, and drops a
        # message whose dead-letter queue does not exist. Declared on every
        # (re)connection: a broker that lost its definitions gets it back.
        if queue_type(self.container.config) == "quorum":
            dead_letter_queue_for(self.container.config)(channel).declare()
        super().on_consume_ready(connection, channel, consumers, **kwargs)

    def get_consumers(self, consumer_cls, channel):
        consumers = super().get_consumers(consumer_cls, channel)
        for provider, consumer in self._consumers.items():
            # A batching event handler holds more messages unacked than the
            # service has workers (common.batching). RabbitMQ applies the
            # channel's prefetch to the consumers started after it is set,
            # so each consumer sets its own just before it starts.
            consumer.consume = _with_prefetch(
                consumer, getattr(provider, "prefetch_count", None) or self.prefetch_count)
        return consumers

    def queue_name_of(self, message) -> str | None:
        tag = message.delivery_info.get("consumer_tag")
        for consumer in self._consumers.values():
            for name, active in getattr(consumer, "_active_tags", {}).items():
                if active == tag:
                    return name
        return None

    def on_decode_error(self, message, exc):
        from common.deadletter_post import dead_letter_undecodable

        dead_letter_undecodable(self, message, exc, queue=self.queue_name_of(message))


def _with_prefetch(consumer, prefetch_count: int):
    consume = consumer.consume

    def consume_with_prefetch(*args, **kwargs):
        consumer.qos(prefetch_count=prefetch_count)
        return consume(*args, **kwargs)

    return consume_with_prefetch


class ClinicEventHandler(EventHandler):
    """A SERVICE_POOL event handler whose queue follows ``QUEUE_TYPE``."""

    queue_consumer = ClinicQueueConsumer()

    def setup(self):
        super().setup()  # builds self.queue; consumers are created at start
        if self.handler_type is SERVICE_POOL and self.reliable_delivery:
            self.queue.queue_arguments = {**(self.queue.queue_arguments or {}),
                                          **consumer_queue_arguments(self.container.config)}


class ClinicRpcConsumer(AnsweringRpcConsumer):
    queue_consumer = ClinicQueueConsumer()

    def setup(self):
        first = self.queue is None
        super().setup()
        if first and self.queue is not None:
            self.queue.queue_arguments = {**(self.queue.queue_arguments or {}),
                                          **consumer_queue_arguments(self.container.config)}


class ClinicRpc(Rpc):
    """nameko's RPC entrypoint on a ``rpc-<service>`` queue that follows
    ``QUEUE_TYPE``."""

    rpc_consumer = ClinicRpcConsumer()

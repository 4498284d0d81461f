"""How the clinic declares the queues its services consume from.

``QUEUE_TYPE: classic`` keeps nameko's own declarations. ``QUEUE_TYPE:
quorum`` declares every durable event-handler queue and every
``rpc-<service>`` queue as a RabbitMQ quorum queue: replicated over a
cluster, and with a ``x-delivery-limit``, so a message that kills its
consumer again and again (the process dies before it can ack) is moved by
the broker to ``clinic.dead-letters`` instead of being redelivered for ever.
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


class ClinicQueueConsumer(SteadyQueueConsumer):
    """nameko's queue consumer, shared by the clinic's event handlers and
    RPC entrypoints of one service."""

    def setup(self):
        super().setup()
        # The broker dead-letters into this queue by name; a queue that does
        # not exist would make it drop the message.
        if queue_type(self.container.config) == "quorum":
            from nameko.amqp import get_connection

            with get_connection(self.amqp_uri) as connection:
                dead_letter_queue_for(self.container.config)(connection.channel()).declare()



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

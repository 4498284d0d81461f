"""Entrypoint decorators shared by every service.

``consumes`` turns a function of ``(self, uow, event)`` into a nameko event
handler that:
- shares work between replicas (SERVICE_POOL) and acks only after its
  transaction has committed (or after the message is safely elsewhere: a
  retry queue or the dead-letter queue);
- applies each ``event_id`` once, whatever RabbitMQ redelivers;
- tells a bad message from a fault around it. A bad message (an envelope
  that is not an event, a ``ClinicError`` from the handler) is dead-lettered
  at once. An infrastructure fault (database or broker connection refused
  or lost, a timeout, a serialization failure or deadlock) is retried with
  capped exponential backoff for as long as ``EVENT_OUTAGE_WINDOW``. Any
  other error is retried the same way ``EVENT_MAX_ATTEMPTS`` times. Then
  the message is dead-lettered.

A retry does not wait inside the worker: the message is published to a
delay queue (``clinic.retry.<ms>ms``, a fixed TTL per queue) that hands it
back to the handler's own queue when the delay is over, and the original
is acked once that publish is confirmed. A long outage therefore holds no
worker and no prefetched message, and the other queues' consumers (RPC
included) keep their share of the worker pool. The attempt count and the
time of the first failure travel in the message's headers, so they survive
restarts.
"""
from __future__ import annotations

import functools
import logging
import time

from kombu import Exchange, Queue
from nameko.events import BROADCAST, SERVICE_POOL

from common.batching import Batching, apply_batch
from common.database import DuplicateEvent
from common.deadletter_post import post_for
from common.deadletters import BROKER_HEADERS, H_ATTEMPTS, H_FIRST_FAILED_AT, H_REDELIVERIES
from common.errors import ClinicError
from common.events import Received, contract_versions
from common.queues import ClinicEventHandler, ClinicRpc, delivery_limit, queue_type, type_arguments

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_OUTAGE_WINDOW_SECONDS = 900
DEFAULT_RETRY_BASE_SECONDS = 1.0
DEFAULT_RETRY_MAX_DELAY_SECONDS = 60.0

RETRY_QUEUE_PREFIX = "clinic.retry."


# RPC methods raise ClinicError for bad input or illegal moves: an expected
# outcome, counted as "rejected" rather than "error".
def rpc(fn=None, **options):
    # Not functools.partial: nameko's bare-decorator form (``@rpc`` with no
    # call) drops keyword arguments, so expected_exceptions would be lost.
    options.setdefault("expected_exceptions", (ClinicError,))
    return ClinicRpc.decorator(**options) if fn is None else ClinicRpc.decorator(**options)(fn)


def handler_queue_name(source_service: str, event_type: str, service_name: str, method_name: str) -> str:
    # nameko's naming for SERVICE_POOL handlers; replaying into this queue
    # reaches the one handler that failed, not every subscriber.
    return f"evt-{source_service}-{event_type}--{service_name}.{method_name}"


# ------------------------------------------------------------ what failed

class HandlerFailed(Exception):
    """A handler's unexpected error, carried to the entrypoint, which
    decides between a retry and the dead-letter queue. Declared expected so
    that nameko does not log a traceback (which may quote data) per retry."""

    def __init__(self, error: BaseException):
        super().__init__(type(error).__name__)
        self.error = error


def is_transient(exc: BaseException) -> bool:
    """An infrastructure fault that goes away by itself (the database or
    broker is restarting, the network blinked, a transaction lost a race),
    as opposed to a message this handler can never apply."""
    import sqlalchemy.exc as sa_exc
    from amqp.exceptions import RecoverableConnectionError
    from kombu.exceptions import OperationalError as KombuOperationalError

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
            return True
        # OperationalError covers refused and lost connections, timeouts,
        # serialization failures and deadlocks (psycopg's TransactionRollback
        # is one), and SQLite's "database is locked".
        if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError,
                            sa_exc.TimeoutError, ConnectionError, TimeoutError,
                            RecoverableConnectionError, KombuOperationalError)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def retry_delay(attempt: int, base: float, cap: float) -> float:
    """Seconds before retry number ``attempt`` (1, 2, …): doubling from
    ``base`` up to ``cap``."""
    return min(base * 2 ** max(attempt - 1, 0), cap)


def retry_queue(delay_seconds: float, config) -> Queue:
    """The delay queue for one delay: messages wait there ``delay`` and are
    then dead-lettered by the broker, through the default exchange, to the
    queue named by their routing key (the handler's queue). One fixed TTL
    per queue, so no message waits behind a longer one."""
    milliseconds = max(1, int(round(delay_seconds * 1000)))
    name = f"{RETRY_QUEUE_PREFIX}{milliseconds}ms"
    arguments = {**type_arguments(config), "x-message-ttl": milliseconds, "x-dead-letter-exchange": ""}
    if queue_type(config) == "quorum":
        arguments.update({"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"})
    return Queue(name, exchange=Exchange(name, type="fanout", durable=True), routing_key="",
                 durable=True, queue_arguments=arguments)


class RetryingEventHandler(ClinicEventHandler):
    """Acks, retries or dead-letters a message by its worker's outcome, and
    tells the metrics which it was: ``ok``, ``rejected`` (dead-lettered as
    bad), ``retrying`` or ``error`` (dead-lettered after retries).

    On a classic queue, which counts no deliveries, it also bounds a
    message that keeps killing its consumer: a redelivered message is not
    handled but sent back, after the retry backoff, with its count of
    redeliveries in a header, and dead-lettered (``delivery-limit``) once that count passes
    ``QUEUE_DELIVERY_LIMIT``; a quorum queue's broker does this itself."""

    def handle_message(self, body, message):
        if message.delivery_info.get("redelivered") and queue_type(self.container.config) == "classic":
            self._count_redelivery(message)
            return
        super().handle_message(body, message)

    def _count_redelivery(self, message):
        handler = f"{self.container.service_name}.{self.method_name}"
        redeliveries = int((message.headers or {}).get(H_REDELIVERIES) or 0) + 1
        post = post_for(self.container)
        try:
            if redeliveries > delivery_limit(self.container.config):
                post.dead_letter(message, reason="delivery-limit", service=self.container.service_name,
                                 handler=handler, queue=self.queue.name, attempts=redeliveries,
                                 error=f"delivered {redeliveries} times without an ack: its consumer died each time")
            else:
                # Through a delay queue rather than straight back: the copy
                # must not reach a worker (and kill the process again) before
                # the ack of this delivery has left, or both would come back.
                delay_queue = retry_queue(self._retry_delay(redeliveries), self.container.config)
                post.declare(delay_queue)
                post.publish(message, {H_REDELIVERIES: redeliveries}, exchange=delay_queue.exchange.name,
                             routing_key=self.queue.name, strip=BROKER_HEADERS)
        except Exception as failure:
            log.error("handler %s: a redelivered message could not be counted (%s); it goes back to its queue",
                      handler, type(failure).__name__)
            self.queue_consumer.requeue_message(message)
            return
        self.queue_consumer.ack_message(message)

    def _retry_delay(self, attempt: int) -> float:
        config = self.container.config
        return retry_delay(attempt, float(config.get("EVENT_RETRY_BASE_SECONDS") or DEFAULT_RETRY_BASE_SECONDS),
                           float(config.get("EVENT_RETRY_MAX_DELAY") or DEFAULT_RETRY_MAX_DELAY_SECONDS))

    def handle_result(self, message, worker_ctx, result=None, exc_info=None):
        if exc_info is None:
            self.queue_consumer.ack_message(message)
            return result, exc_info
        config = self.container.config
        error = exc_info[1]
        handler = f"{self.container.service_name}.{self.method_name}"
        headers = message.headers or {}
        attempts = int(headers.get(H_ATTEMPTS) or 0) + 1
        post = post_for(self.container)
        try:
            if isinstance(error, ClinicError):
                worker_ctx.clinic_outcome = "rejected"
                post.dead_letter(message, reason="rejected", service=self.container.service_name,
                                 handler=handler, queue=self.queue.name, attempts=attempts, error=error)
            else:
                cause = error.error if isinstance(error, HandlerFailed) else error
                self._retry_or_give_up(message, worker_ctx, post, handler, cause, attempts, headers, config)
        except Exception as failure:
            # Neither retried nor dead-lettered: back to the queue, so that
            # nothing is lost (QUEUE_DELIVERY_LIMIT bounds how often).
            log.error("handler %s: the failed message could not be moved (%s); it goes back to its queue",
                      handler, type(failure).__name__)
            worker_ctx.clinic_outcome = "error"
            self.queue_consumer.requeue_message(message)
            return result, exc_info
        self.queue_consumer.ack_message(message)
        return result, exc_info

    def _retry_or_give_up(self, message, worker_ctx, post, handler, cause, attempts, headers, config):
        now = time.time()
        first_failed = float(headers.get(H_FIRST_FAILED_AT) or now)
        transient = is_transient(cause)
        if transient:
            window = float(config.get("EVENT_OUTAGE_WINDOW") or DEFAULT_OUTAGE_WINDOW_SECONDS)
            give_up, reason = now - first_failed >= window, "outage"
        else:
            limit = int(config.get("EVENT_MAX_ATTEMPTS") or DEFAULT_MAX_ATTEMPTS)
            give_up, reason = attempts >= limit, "gave-up"
        if give_up:
            worker_ctx.clinic_outcome = "error"
            post.dead_letter(message, reason=reason, service=self.container.service_name, handler=handler,
                             queue=self.queue.name, attempts=attempts, error=cause)
            return
        delay = self._retry_delay(attempts)
        delay_queue = retry_queue(delay, config)
        post.declare(delay_queue)
        carried = {key: value for key, value in headers.items() if key not in BROKER_HEADERS}
        post.publish(message, {**carried, H_ATTEMPTS: attempts, H_FIRST_FAILED_AT: first_failed},
                     exchange=delay_queue.exchange.name, routing_key=self.queue.name, strip=BROKER_HEADERS)
        worker_ctx.clinic_outcome = "retrying"
        log.warning("handler %s failed (attempt %d, %s): %s; retrying in %.1fs", handler, attempts,
                    "infrastructure" if transient else "unexpected", type(cause).__name__, delay,
                    extra={"handler": handler, "attempts": attempts})


class BatchingEventHandler(Batching, RetryingEventHandler):
    """A ``RetryingEventHandler`` that applies the messages already waiting
    in its queue several per transaction (``common.batching``)."""

    def __init__(self, *args, batching: bool = True, **kwargs):
        self.batching = batching
        super().__init__(*args, **kwargs)


def consumes(*contracts, batch: bool = True, many: bool = False):
    """``@consumes(SessionCompleted)``: the handler is called as
    ``fn(self, uow, event)`` with ``event.data`` the contract's model. Give
    several versions of one event type (``@consumes(SessionCompletedV1,
    SessionCompletedV2)``) to take each; an event of any other version, or
    whose data does not match its contract, is dead-lettered at once.

    Events waiting in the queue are applied several per transaction, each
    by its own call of ``fn``. ``batch=False`` opts out: one event per
    transaction, for a handler that must not share one (it calls another
    service, or its side effects cannot be rolled back with the others').
    ``many=True``: ``fn(self, uow, events)`` takes the list of fresh events
    of a batch (a list of one for a lone event), so it can read and write
    for all of them in a few statements."""
    versions = contract_versions(contracts)
    source_service, event_type = contracts[0].producer, contracts[0].type

    def read(body):
        return Received.read(body, versions)

    def decorator(fn):
        apply_one = None if many else fn
        apply_many = fn if many else None

        @functools.wraps(fn)
        def handle(self, body=None, *, batch=None):
            handler = f"{self.name}.{fn.__name__}"
            if batch is not None:
                try:
                    apply_batch(self, handler, [read(each) for each in batch], apply_one, apply_many)
                    return
                except ClinicError:
                    raise
                except Exception as exc:
                    raise HandlerFailed(exc) from exc
            event = read(body)  # ClinicError: dead-lettered as rejected
            self.db.adopt_correlation_id(event.correlation_id)
            try:
                with self.db.unit_of_work() as uow:
                    if not uow.claim_event(event.event_id, event.type, handler):
                        return
                    if many:
                        fn(self, uow, [event])
                    else:
                        fn(self, uow, event)
            except DuplicateEvent:
                return
            except ClinicError:
                raise  # deterministic: retrying cannot help
            except Exception as exc:
                raise HandlerFailed(exc) from exc

        # What docs/events.md's "consumed by" is built from.
        handle.consumed_event = (source_service, event_type)
        handle.consumed_contracts = tuple(versions.values())
        # requeue_on_error is what happens if the entrypoint itself breaks:
        # the message goes back rather than being dropped.
        return BatchingEventHandler.decorator(
            source_service, event_type, handler_type=SERVICE_POOL, requeue_on_error=True,
            expected_exceptions=(ClinicError, HandlerFailed), batching=batch,
        )(handle)

    return decorator


def on_every_replica(*contracts):
    """``@on_every_replica(FeeScheduleChanged)``: ``fn(self, event)`` runs in
    every running process of the service (nameko's BROADCAST handler, one
    queue per process that goes with it), not in one of them. For what each
    process keeps for itself, such as a cache to drop; there is no
    transaction and no claim, and a process that was away when the event
    was published never sees it, so what it guards needs a safety net (a
    cache that also expires)."""
    versions = contract_versions(contracts)
    source_service, event_type = contracts[0].producer, contracts[0].type

    def decorator(fn):
        @functools.wraps(fn)
        def handle(self, body):
            fn(self, Received.read(body, versions))

        handle.consumed_event = (source_service, event_type)
        handle.consumed_contracts = tuple(versions.values())
        return ClinicEventHandler.decorator(
            source_service, event_type, handler_type=BROADCAST, reliable_delivery=False,
            expected_exceptions=(ClinicError,),
        )(handle)

    return decorator

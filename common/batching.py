"""Several events per transaction when a handler's queue is deep.

One event per transaction costs BEGIN, the processed-events claim and
COMMIT for every event, and a worker per message. ``BatchingEventHandler``
takes the messages that have already arrived for one handler (up to
``EVENT_BATCH_SIZE``), and hands them to one worker, which claims them all
in one statement (``INSERT … ON CONFLICT DO NOTHING RETURNING event_id``),
applies the fresh ones in one unit of work and commits once; only then is
each message acked. It never waits for a batch to fill: the messages taken
are the ones the consumer has received by the time it next waits on the
broker, so a lone event is handled at once, and a batch grows only while
earlier batches are still being applied (at most ``EVENT_BATCHES_IN_FLIGHT``
per handler; the rest wait, unacked, in the prefetch).

A batch that fails for any reason is not retried as a batch: its messages
go one by one through the ordinary path (``RetryingEventHandler``), so one
bad event is dead-lettered alone with its reason, an outage sends each
message to the delay queues with its own attempt count, and the others are
applied. A redelivered message, or one back from a delay queue, always goes
one by one. Idempotency is the claim's: a batch committed but not acked
(the process died in between) comes back redelivered, one by one, and each
finds its claim already there.
"""
from __future__ import annotations

import functools
import logging
from functools import partial

from nameko.exceptions import ContainerBeingKilled
from sqlalchemy.dialects import postgresql, sqlite

from common import outbox
from common.deadletters import H_ATTEMPTS, H_REDELIVERIES
from common.events import utcnow

log = logging.getLogger(__name__)

DEFAULT_EVENT_BATCH_SIZE = 50
DEFAULT_EVENT_BATCHES_IN_FLIGHT = 2


def batch_size(config) -> int:
    return max(1, int(config.get("EVENT_BATCH_SIZE") or DEFAULT_EVENT_BATCH_SIZE))


def batches_in_flight(config) -> int:
    return max(1, int(config.get("EVENT_BATCHES_IN_FLIGHT") or DEFAULT_EVENT_BATCHES_IN_FLIGHT))


def claim_events(session, events, handler: str) -> set[str]:
    """Record that ``handler`` applies each of ``events`` in this
    transaction, in one statement; the ids of those it had not applied yet.
    The unique key decides, as for one event (a racing replica waits on the
    other's uncommitted claim and then finds it)."""
    if not events:
        return set()
    now = utcnow()
    rows = [{"event_id": event.event_id, "handler": handler, "event_type": event.type, "processed_at": now}
            for event in events]
    # Sent as one INSERT of all the rows (SQLAlchemy's "insertmanyvalues"),
    # compiled once whatever the batch's size.
    return set(session.execute(_claim(session.get_bind().dialect.name), rows).scalars())


@functools.cache
def _claim(dialect: str):
    table = outbox.processed_events
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (insert(table).on_conflict_do_nothing(index_elements=["event_id", "handler"])
            .returning(table.c.event_id))


def distinct_events(events):
    """Each event once (a producer's duplicate may share a batch with it)."""
    seen, distinct = set(), []
    for event in events:
        if event.event_id not in seen:
            seen.add(event.event_id)
            distinct.append(event)
    return distinct


def apply_batch(service, handler: str, events, apply_one, apply_many) -> int:
    """Claim ``events`` and apply the fresh ones in one unit of work.
    ``apply_many(service, uow, events)`` takes them all at once; otherwise
    ``apply_one(service, uow, event)`` is called for each, with the
    transaction's outgoing events carrying that event's correlation id."""
    events = distinct_events(events)
    with service.db.unit_of_work() as uow:
        fresh = claim_events(uow.session, events, handler)
        todo = [event for event in events if event.event_id in fresh]
        if apply_many is not None:
            if todo:
                apply_many(service, uow, todo)
        else:
            for event in todo:
                service.db.adopt_correlation_id(event.correlation_id)
                uow.correlation_id = event.correlation_id
                apply_one(service, uow, event)
    return len(todo)


class Batching:
    """The batching half of an event handler entrypoint (mixed into
    ``RetryingEventHandler`` by ``common.handlers``): collects messages,
    spawns one worker per batch, and acks or falls back one by one."""

    batching = True

    def setup(self):
        super().setup()
        config = self.container.config
        self.batch_size = batch_size(config) if self.batching else 1
        self.max_in_flight = batches_in_flight(config)
        self._pending: list = []
        self._in_flight = 0
        self._flush_scheduled = False

    @property
    def prefetch_count(self) -> int | None:
        """What this handler's consumer may hold unacked: room for the
        batches in flight and the next one filling (None: the service's)."""
        if self.batch_size <= 1:
            return None
        return max(self.container.max_workers, self.batch_size * (self.max_in_flight + 1))

    def handle_message(self, body, message):
        headers = message.headers or {}
        if (self.batch_size <= 1 or message.delivery_info.get("redelivered")
                or headers.get(H_ATTEMPTS) or headers.get(H_REDELIVERIES)):
            super().handle_message(body, message)
            return
        self._pending.append((body, message))
        if not self._flush_scheduled:
            # Runs once the consumer waits on the broker again: every
            # message received until then joins this batch.
            self._flush_scheduled = True
            self.container.spawn_managed_thread(self._flush, identifier=f"{self.method_name}.batch")

    def _flush(self):
        self._flush_scheduled = False
        while self._pending and self._in_flight < self.max_in_flight:
            batch, self._pending = self._pending[:self.batch_size], self._pending[self.batch_size:]
            self._in_flight += 1
            try:
                self._spawn(batch)
            except Exception as exc:  # the container is being killed: the broker keeps them
                self._in_flight -= 1
                if not isinstance(exc, ContainerBeingKilled):
                    log.error("handler %s.%s: a batch could not be started (%s); its messages go back to the queue",
                              self.container.service_name, self.method_name, type(exc).__name__)
                for _body, message in batch:
                    self.queue_consumer.requeue_message(message)
                return

    def _spawn(self, batch):
        first_body, first_message = batch[0]
        if len(batch) == 1:
            handle_result = partial(self._single_result, first_message)
            args, kwargs = (first_body,), {}
        else:
            handle_result = partial(self._batch_result, batch)
            args, kwargs = (), {"batch": [body for body, _message in batch]}
        self.container.spawn_worker(self, args, kwargs, context_data=self.unpack_message_headers(first_message),
                                    handle_result=handle_result)

    def _single_result(self, message, worker_ctx, result=None, exc_info=None):
        try:
            return self.handle_result(message, worker_ctx, result, exc_info)
        finally:
            self._done()

    def _batch_result(self, batch, worker_ctx, result=None, exc_info=None):
        try:
            if exc_info is None:
                for _body, message in batch:
                    self.queue_consumer.ack_message(message)
                return result, exc_info
            error = getattr(exc_info[1], "error", exc_info[1])
            log.warning("handler %s.%s: a batch of %d failed (%s); its events are applied one by one",
                        self.container.service_name, self.method_name, len(batch), type(error).__name__)
            worker_ctx.clinic_outcome = "retrying"
            # In a thread of its own: this worker still holds its slot in
            # the pool the one-by-one workers need.
            self.container.spawn_managed_thread(partial(self._one_by_one, batch),
                                                identifier=f"{self.method_name}.one-by-one")
            return result, exc_info
        finally:
            self._done()

    def _one_by_one(self, batch):
        for body, message in batch:
            super().handle_message(body, message)

    def _done(self):
        self._in_flight -= 1
        if self._pending and not self._flush_scheduled:
            self._flush_scheduled = True
            self.container.spawn_managed_thread(self._flush, identifier=f"{self.method_name}.batch")

"""Transactional outbox and its relay.

Events are written as rows in the same transaction as the state change that
causes them. Right after the commit the worker publishes its own rows (so an
alert leaves within milliseconds); whatever could not be published then
(broker down, process killed) is picked up by the relay timer. Rows are
claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL plus a claim deadline,
so any number of replicas can relay at once without publishing a row twice
in the ordinary case. In the rare crash between publish and "mark sent" a row
is published again; consumers are idempotent on ``event_id``.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from datetime import timedelta

import sqlalchemy as sa
from kombu import Connection, Producer
from nameko.amqp.publish import Publisher
from nameko.standalone.events import get_event_exchange
from sqlalchemy.orm import Session

from common.events import utcnow

log = logging.getLogger(__name__)

# Tables every service database has besides its own; created by each
# service's first migration through ``common.migrations``.
plumbing_metadata = sa.MetaData()

outbox = sa.Table(
    "outbox",
    plumbing_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(36), nullable=False, unique=True),
    sa.Column("event_type", sa.String(80), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Index("ix_outbox_pending", "sent_at", "id"),
)

processed_events = sa.Table(
    "processed_events",
    plumbing_metadata,
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("handler", sa.String(120), primary_key=True),
    sa.Column("event_type", sa.String(80), nullable=False),
    sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
)

# How long a claimed row is left alone before another relay may take it.
CLAIM_SECONDS = 15
RELAY_BATCH = 200
# How long a batch waits for the broker's confirms before it counts as
# unpublished (its rows go back to the relay).
CONFIRM_TIMEOUT_SECONDS = 10.0


class EventPublisher:
    """Publishes envelopes to ``<service>.events`` exactly as nameko's
    ``EventDispatcher`` would (same exchange, routing key = event type), with
    publisher confirms, so plain ``@event_handler`` subscribers receive them."""

    def __init__(self, amqp_uri: str, service_name: str, config: dict | None = None):
        self.amqp_uri = amqp_uri
        self.exchange = get_event_exchange(service_name, config or {})
        self._batch_connection: Connection | None = None
        self._batch_lock = threading.Lock()
        self.publisher = Publisher(
            amqp_uri,
            use_confirms=True,
            declare=[self.exchange],
            # Fail fast: an unpublished row simply waits for the relay.
            retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2},
        )

    def publish(self, event_type: str, body: dict) -> None:
        headers = {"nameko.correlation_id": body.get("correlation_id")}
        self.publisher.publish(
            body, exchange=self.exchange, routing_key=event_type, headers=headers
        )

    def publish_batch(self, events: list[tuple[str, dict]]) -> tuple[int, Exception | None]:
        """Publish every event, then wait once for the broker's confirms
        (instead of a round trip per event). Returns how many events, from
        the first, the broker confirmed, and the error that stopped the rest."""
        if not events:
            return 0, None
        with self._batch_lock:
            try:
                return self._publish_batch(events)
            except Exception as exc:
                self._close_batch_connection()
                return 0, exc

    def _publish_batch(self, events):
        connection = self._batch_connection
        if connection is None:
            connection = Connection(self.amqp_uri, connect_timeout=5)
            channel = connection.default_channel
            self.exchange.declare(channel=channel)
            channel.confirm_select()
            self._batch_connection = connection
        channel = connection.default_channel
        producer = Producer(channel, exchange=self.exchange, serializer="json")
        # Delivery tags count up per channel from its confirm_select.
        first_tag = getattr(channel, "clinic_published", 0) + 1
        confirmed = {"up_to": first_tag - 1, "nacked": None}
        single: set[int] = set()

        def acked(tag, multiple):
            if multiple:
                confirmed["up_to"] = max(confirmed["up_to"], tag)
            else:
                single.add(tag)
            while confirmed["up_to"] + 1 in single:
                confirmed["up_to"] += 1

        def nacked(tag, multiple):
            low = confirmed["nacked"]
            confirmed["nacked"] = tag if low is None else min(low, tag)

        channel.events["basic_ack"].add(acked)
        channel.events["basic_nack"].add(nacked)
        try:
            for event_type, body in events:
                producer.publish(body, routing_key=event_type, delivery_mode=2,
                                 headers={"nameko.correlation_id": body.get("correlation_id")})
                channel.clinic_published = getattr(channel, "clinic_published", 0) + 1
            last_tag = channel.clinic_published
            deadline = time.monotonic() + CONFIRM_TIMEOUT_SECONDS
            while confirmed["up_to"] < last_tag and confirmed["nacked"] is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("the broker did not confirm the batch in time")
                connection.drain_events(timeout=left)
        finally:
            channel.events["basic_ack"].discard(acked)
            channel.events["basic_nack"].discard(nacked)
        if confirmed["nacked"] is not None:
            # Acks and nacks may interleave; only the run before the first
            # nack is known to be stored.
            done = min(confirmed["up_to"], confirmed["nacked"] - 1) - first_tag + 1
            return max(0, done), RuntimeError("the broker refused an event")
        return len(events), None

    def _close_batch_connection(self) -> None:
        connection, self._batch_connection = self._batch_connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:
                pass

    def close(self) -> None:
        with self._batch_lock:
            self._close_batch_connection()


# Statements built once, their values bound at each call: building one per
# call (``insert().values(...)``, ``in_([...])``) costs more CPU than the
# round trip it sends, on every unit of work that emits an event.
_ADD_EVENT = outbox.insert()
_MARK_SENT = (outbox.update().where(outbox.c.event_id.in_(sa.bindparam("event_ids", expanding=True)))
              .values(sent_at=sa.bindparam("sent_at")))


def add_event(session: Session, body: dict, *, claimed: bool) -> None:
    now = utcnow()
    session.execute(_ADD_EVENT, {
        "event_id": body["event_id"],
        "event_type": body["type"],
        "body": json.dumps(body),
        "created_at": now,
        # The committing worker publishes its own rows at once; the claim
        # keeps the relay from racing it unless it fails to.
        "claimed_until": now + timedelta(seconds=CLAIM_SECONDS) if claimed else None,
    })


class SentMarks:
    """Events a worker has published whose rows are not marked sent yet:
    marked a moment later, all with one UPDATE (``flush``), rather than
    with a write, and a WAL flush, for each. The rows stay claimed
    meanwhile (``CLAIM_SECONDS``), so no relay takes them. A process that
    dies before marking them leaves them to the relay once the claim runs
    out: they are published once more, which consumers, idempotent on
    ``event_id``, ignore."""

    def __init__(self):
        self._pending: list[str] = []

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, event_ids: list[str]) -> None:
        self._pending.extend(event_ids)

    def flush(self, session_factory) -> int:
        # Taken before the write: a greenthread adding marks while it waits
        # adds them to the next flush.
        event_ids, self._pending = self._pending, []
        if not event_ids:
            return 0
        try:
            with session_factory() as session, session.begin():
                session.execute(_MARK_SENT, {"event_ids": event_ids, "sent_at": utcnow()})
        except BaseException:
            self._pending[:0] = event_ids
            raise
        return len(event_ids)


def publish_committed(session_factory, publisher: EventPublisher, bodies: list[dict],
                      marks: SentMarks | None = None) -> int:
    """Publish the events a unit of work has just committed, from the
    bodies it still holds, and mark their rows sent; on failure release
    them for the relay. Returns how many were published.

    Nothing is read back first: the rows were written claimed
    (``add_event(claimed=True)``), so no relay takes them in the meantime.
    ``session_factory`` may give autocommit sessions (each UPDATE is then
    one round trip, with no BEGIN or COMMIT). With ``marks``, the rows of
    the events published are marked sent later, by ``marks.flush``."""
    if not bodies:
        return 0
    return _publish_and_mark(session_factory, publisher,
                             [(body["event_id"], body["type"], body) for body in bodies], marks)


def relay_pending(session_factory, publisher: EventPublisher, limit: int = RELAY_BATCH) -> int:
    """Claim unsent rows whose claim has lapsed, publish them in order and
    mark them sent. Safe to run in every replica at once."""
    now = utcnow()
    with session_factory() as session, session.begin():
        rows = session.execute(
            sa.select(outbox.c.id, outbox.c.event_id, outbox.c.event_type, outbox.c.body)
            .where(
                outbox.c.sent_at.is_(None),
                sa.or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < now),
            )
            .order_by(outbox.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        if not rows:
            return 0
        session.execute(
            outbox.update()
            .where(outbox.c.id.in_([row.id for row in rows]))
            .values(claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
        )
    return _publish_and_mark(session_factory, publisher,
                             [(row.event_id, row.event_type, json.loads(row.body)) for row in rows])


def _publish_and_mark(session_factory, publisher: EventPublisher, events: list[tuple[str, str, dict]],
                      marks: SentMarks | None = None) -> int:
    """``events``: (event_id, event_type, body), in outbox order."""
    published: list[str] = []
    error: Exception | None = None
    if len(events) > 1:
        # A backlog (after a broker outage): one wait for all the confirms.
        count, error = publisher.publish_batch([(event_type, body) for _, event_type, body in events])
        published = [event_id for event_id, _, _ in events[:count]]
    else:
        for event_id, event_type, body in events:
            try:
                publisher.publish(event_type, body)
            except Exception as exc:  # broker unreachable: stop, keep order
                error = exc
                break
            published.append(event_id)
    unpublished = [event_id for event_id, _, _ in events if event_id not in set(published)]
    if marks is not None:
        marks.add(published)
        published = []
    if published or unpublished:
        _mark(session_factory, published, unpublished, error)
    if error is not None:
        log.warning("outbox publish failed, %d event(s) left for the relay: %s",
                    len(unpublished), type(error).__name__)
    return len(events) - len(unpublished)


def _mark(session_factory, published: list[str], unpublished: list[str], error: Exception | None) -> None:
    with session_factory() as session, session.begin():
        if published:
            session.execute(_MARK_SENT, {"event_ids": published, "sent_at": utcnow()})
        if unpublished:
            session.execute(
                outbox.update()
                .where(outbox.c.event_id.in_(unpublished))
                .values(
                    claimed_until=None,
                    attempts=outbox.c.attempts + 1,
                    last_error=f"{type(error).__name__}: {error}"[:500],
                )
            )

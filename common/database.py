"""The database seen by a service: an engine per service process, and per
worker a unit of work that commits state and outgoing events together."""
from __future__ import annotations

import functools
import logging
import time
import uuid
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import eventlet
import sqlalchemy as sa
from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from common import outbox
from common.config import database_url
from common.engines import DatabaseTimeout, Timeouts, is_outage, make_engine, worker_deadline
from common.errors import ServiceUnavailable
from common.events import EventData, envelope, utcnow

log = logging.getLogger(__name__)

# How soon a published event's outbox row is marked sent (OUTBOX_MARK_INTERVAL):
# well within the claim (outbox.CLAIM_SECONDS) that keeps the relay from
# publishing it again.
DEFAULT_MARK_INTERVAL_SECONDS = 0.5


class UnitOfWork:
    """One transaction: the records it changes and the events it emits."""

    def __init__(self, session: Session, producer: str, correlation_id: str, actor: str | None,
                 reading: bool = False):
        self.session = session
        self.producer = producer
        self.correlation_id = correlation_id
        self.actor = actor
        self.reading = reading
        self.emitted: list[dict] = []

    def emit(self, event: EventData) -> dict:
        """Add the event to the outbox, committed with this transaction.
        ``event`` is the producer's contract (``services/<name>/events.py``)."""
        if self.reading:
            raise TypeError("an audited read changes nothing and emits no event; use unit_of_work()")
        if not isinstance(event, EventData):
            raise TypeError(f"emit() takes an event contract (an EventData), not {type(event).__name__}")
        if event.producer != self.producer:
            raise TypeError(f"{self.producer} cannot emit {event.contract()}: its producer is {event.producer}")
        body = envelope(
            event.type, event.facts(), producer=self.producer,
            correlation_id=self.correlation_id, version=event.version,
        )
        outbox.add_event(self.session, body, claimed=True)
        self.emitted.append(body)
        return body

    def claim_event(self, event_id: str, event_type: str, handler: str) -> bool:
        """Record that ``handler`` applies ``event_id`` in this transaction.
        False when it already has: the caller must then do nothing."""
        # One statement: the database's unique key, not a SELECT before the
        # INSERT, decides whether this worker is the first.
        return insert_ignoring_duplicates(
            self.session, outbox.processed_events,
            {"event_id": event_id, "handler": handler, "event_type": event_type, "processed_at": utcnow()},
            unique=("event_id", "handler"),
        )


def _roll_back(session: Session) -> None:
    # On a connection the database already dropped the rollback fails too;
    # the error that matters is the one that got us here.
    try:
        session.rollback()
    except Exception:
        log.debug("rollback failed", exc_info=True)


class DuplicateEvent(Exception):
    """Another worker applied the same event first (lost the insert race)."""


class ServiceDatabase:
    """What ``self.db`` is inside a worker.

    In an RPC worker a caller is waiting: the worker's database work has a
    deadline (``Timeouts.budget`` from the worker's start), and a database
    that is down, hung or too slow is reported as ``ServiceUnavailable``.
    Event handlers and timers get the database's own error instead, so that
    they retry it rather than treat it as a rejection."""

    def __init__(self, provider: "Database", context: dict, caller_waiting: bool = False):
        self._provider = provider
        self._context = context
        self._caller_waiting = caller_waiting
        self._deadline_at = time.monotonic() + provider.timeouts.budget if caller_waiting else None
        # Events an RPC worker has committed, published once its caller has
        # the answer (``Database.worker_result``).
        self._committed_unpublished: list[dict] = []

    @property
    def correlation_id(self) -> str:
        # Kept in the worker's context so RPC calls and events made later in
        # the same worker carry it on.
        if not self._context.get("correlation_id"):
            self._context["correlation_id"] = str(uuid.uuid4())
        return self._context["correlation_id"]

    def adopt_correlation_id(self, correlation_id: str) -> None:
        self._context["correlation_id"] = correlation_id

    @property
    def actor(self) -> str | None:
        return self._context.get("actor")

    @contextmanager
    def unit_of_work(self) -> Iterator[UnitOfWork]:
        """Commit on success, roll back on any error; then publish the
        events just committed (the relay covers a failed publish). In an
        RPC worker they are published after the answer has left: the caller
        does not wait for the broker's confirm and the rows' "sent" mark,
        and nothing can be lost meanwhile, because the rows are committed
        and claimed for a while only (``outbox.CLAIM_SECONDS``), then the
        relay's."""
        session = self._provider.session_factory()
        uow = UnitOfWork(session, self._provider.service_name, self.correlation_id, self.actor)
        committing = False
        try:
            with worker_deadline(self._deadline_at):
                yield uow
                session.flush()
                if self._deadline_at is not None and time.monotonic() >= self._deadline_at:
                    # The caller is being told it failed: a COMMIT sent now
                    # could still land.
                    raise DatabaseTimeout("the database work took longer than the caller waits")
                committing = True
                session.commit()
        except IntegrityError as exc:
            _roll_back(session)
            if "processed_events" in str(exc.orig).lower() or "processed_events" in str(exc):
                raise DuplicateEvent() from exc
            raise
        except BaseException as exc:
            _roll_back(session)
            self._raise_unavailable_if_outage(exc, committing)
            raise
        finally:
            session.close()
        if self._caller_waiting:
            self._committed_unpublished.extend(uow.emitted)
        else:
            self.publish(uow.emitted)

    @contextmanager
    def audited_read(self) -> Iterator[UnitOfWork]:
        """A read of a patient's records that writes nothing but its audit
        row (``RecordAccessMixin.record(uow, …)``), in two round trips fewer
        than a unit of work: no BEGIN and no COMMIT. Each statement is its
        own transaction (autocommit), which costs a read nothing: under READ
        COMMITTED every statement of a transaction takes its own snapshot
        anyway. The audit INSERT is committed when it is sent, before the
        answer can leave the worker, so no answer leaves without its audit
        row, whatever happens to the process afterwards. Emitting an event
        here is refused: a change and its events need a unit of work."""
        with self._session(self._provider.reading_session_factory) as session:
            yield UnitOfWork(session, self._provider.service_name, self.correlation_id, self.actor, reading=True)
            if session.new or session.dirty or session.deleted:
                raise TypeError("an audited read may not change records; use unit_of_work()")

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._session(self._provider.session_factory) as session:
            yield session

    @contextmanager
    def _session(self, factory) -> Iterator[Session]:
        """A session that changes nothing, within the worker's deadline, and
        is rolled back and closed whatever happens."""
        session = factory()
        try:
            with worker_deadline(self._deadline_at):
                yield session
        except BaseException as exc:
            self._raise_unavailable_if_outage(exc, committing=False)
            raise
        finally:
            _roll_back(session)
            session.close()

    def _raise_unavailable_if_outage(self, exc: BaseException, committing: bool) -> None:
        if not self._caller_waiting or not is_outage(exc):
            return
        log.warning("%s: the database is unavailable (%s)", self._provider.service_name, type(exc).__name__)
        if committing:
            # The commit was sent and its answer never came: only the
            # database knows. A retry with the same Idempotency-Key is safe.
            raise ServiceUnavailable(
                "the service's database did not confirm the change in time; it may or may not have been "
                "saved, so check before repeating it") from exc
        raise ServiceUnavailable(
            "the service's database is unavailable; nothing was saved, try again shortly") from exc

    def publish_after_answer(self) -> None:
        bodies, self._committed_unpublished = self._committed_unpublished, []
        self.publish(bodies)

    def publish(self, bodies: list[dict]) -> None:
        """Publish the events just committed (``UnitOfWork.emitted``)."""
        try:
            outbox.publish_committed(self._provider.reading_session_factory, self._provider.publisher, bodies,
                                     self._provider.sent_marks)
        except Exception:  # the rows are committed; the relay will send them
            log.warning("immediate publish failed; the outbox relay will retry", exc_info=True)

    def flush_sent_marks(self) -> None:
        self._provider.flush_sent_marks()

    def relay(self) -> int:
        return outbox.relay_pending(self._provider.session_factory, self._provider.publisher)

    def ping(self) -> None:
        with self._provider.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))


class FirstStatementRetryingSession(Session):
    """A session that sends its transaction's first statement again, once,
    on a new connection when the pooled one turns out to be lost (a
    database restart the checkout could not see yet). Safe: nothing had
    been done in the transaction, and a transaction the server lost with
    its connection was never committed."""

    def execute(self, *args, **kwargs):
        if self.in_transaction():
            return super().execute(*args, **kwargs)
        try:
            return super().execute(*args, **kwargs)
        except sa.exc.DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            log.info("a pooled database connection was lost; the statement is sent again on a new one")
            self.rollback()
            return super().execute(*args, **kwargs)


class Database(DependencyProvider):
    """Engine and sessions for the service's own database, named by the
    service in ``DATABASE_URLS``."""

    def setup(self):
        config = self.container.config
        self.service_name = self.container.service_name
        self.timeouts = Timeouts.from_config(config)
        self.engine = make_engine(database_url(config, self.service_name), self.timeouts)
        self.session_factory = sessionmaker(self.engine, class_=FirstStatementRetryingSession,
                                            expire_on_commit=False)
        self.reading_engine = make_engine(database_url(config, self.service_name), self.timeouts, autocommit=True)
        self.reading_session_factory = sessionmaker(self.reading_engine, class_=FirstStatementRetryingSession,
                                                    expire_on_commit=False)
        self.publisher = outbox.EventPublisher(config["AMQP_URI"], self.service_name, config)
        self.sent_marks = outbox.SentMarks()
        self.mark_interval = float(config.get("OUTBOX_MARK_INTERVAL") or DEFAULT_MARK_INTERVAL_SECONDS)
        self._answering: dict = {}

    def start(self):
        self.container.spawn_managed_thread(self._mark_sent_events, identifier="outbox sent marks")

    def _mark_sent_events(self):
        while True:
            eventlet.sleep(self.mark_interval)
            self.flush_sent_marks()

    def flush_sent_marks(self) -> None:
        try:
            self.sent_marks.flush(self.reading_session_factory)
        except Exception as exc:  # kept for the next try; the claims outlast several
            log.warning("%s: published events not marked sent yet (%s)", self.service_name, type(exc).__name__)

    def stop(self):
        self.flush_sent_marks()
        self.engine.dispose()
        self.reading_engine.dispose()
        self.publisher.close()

    def kill(self):
        # Close the pooled connections now rather than whenever the garbage
        # collector gets to them: under eventlet a socket closed at an
        # arbitrary moment can have its descriptor reused under a reader.
        self.engine.dispose()
        self.reading_engine.dispose()
        self.publisher.close()

    def get_dependency(self, worker_ctx):
        caller_waiting = isinstance(worker_ctx.entrypoint, Rpc)
        database = ServiceDatabase(self, worker_ctx.data, caller_waiting=caller_waiting)
        if caller_waiting:
            self._answering[worker_ctx] = database
        return database

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        # nameko calls this after the entrypoint has sent the RPC reply.
        database = self._answering.pop(worker_ctx, None)
        if database is not None:
            database.publish_after_answer()

    def worker_teardown(self, worker_ctx):
        self._answering.pop(worker_ctx, None)


def insert_ignoring_duplicates(executor: Session | sa.Connection, table: sa.Table, values: dict, *,
                               unique: str | tuple[str, ...]) -> bool:
    """``INSERT … ON CONFLICT (unique) DO NOTHING`` on PostgreSQL and SQLite:
    the database, not a prior SELECT, decides which of two racing writers
    (replicas, redeliveries) was first. True if this call added the row."""
    bind = executor.get_bind() if isinstance(executor, Session) else executor
    columns = (unique,) if isinstance(unique, str) else tuple(unique)
    result = executor.execute(_insert_ignoring(bind.dialect.name, table, columns), values)
    return result.rowcount == 1


@functools.cache
def _insert_ignoring(dialect: str, table: sa.Table, unique: tuple[str, ...]) -> sa.Insert:
    # Built once per table: its values are bound at each call.
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing(index_elements=list(unique))


def upsert_if_newer(session: Session, table: sa.Table, values: dict, *, key: str, as_of: str,
                    keep_when_missing: tuple[str, ...] = (), on_insert: dict | None = None,
                    also_set: Callable[[Any], dict] | None = None) -> None:
    """A service's copy of another's facts (a read model kept from events),
    written in one statement: the row is inserted, or updated when these
    facts are newer than the ones it holds (``values[as_of]`` later than its
    ``as_of`` column), else left as it is. Nothing is read or locked first:
    ``INSERT … ON CONFLICT DO UPDATE … WHERE`` lets the database order two
    events about one record racing, and an older event arriving late never
    overwrites a newer one.

    ``keep_when_missing``: columns whose stored value stays when the event
    has none; ``on_insert``: values of a new row only; ``also_set(excluded)``:
    further assignments of the update, as expressions over the stored row
    and ``excluded`` (the proposed one). Give a module-level function: the
    statement is built once for each shape of call and then only its values
    are bound."""
    on_insert = on_insert or {}
    statement = _upsert_if_newer(session.get_bind().dialect.name, table, tuple(values), tuple(on_insert), key,
                                 as_of, tuple(keep_when_missing), also_set)
    session.execute(statement, {**on_insert, **values})


@functools.cache
def _upsert_if_newer(dialect: str, table: sa.Table, columns: tuple[str, ...], inserted_only: tuple[str, ...],
                     key: str, as_of: str, keep_when_missing: tuple[str, ...], also_set) -> sa.Insert:
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table).values(
        {name: sa.bindparam(name, type_=table.c[name].type) for name in inserted_only + columns})
    excluded = insert.excluded
    assignments = {name: sa.func.coalesce(excluded[name], table.c[name]) if name in keep_when_missing
                   else excluded[name] for name in columns if name != key}
    if also_set is not None:
        assignments.update(also_set(excluded))
    stored_as_of = table.c[as_of]
    return insert.on_conflict_do_update(index_elements=[key], set_=assignments,
                                        where=sa.or_(stored_as_of.is_(None), stored_as_of < excluded[as_of]))

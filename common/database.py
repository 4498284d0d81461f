"""The database seen by a service: an engine per service process, and per
worker a unit of work that commits state and outgoing events together."""
from __future__ import annotations

import logging
import uuid
from contextlib import contextmanager
from typing import Iterator

import sqlalchemy as sa
from nameko.extensions import DependencyProvider
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from common import outbox
from common.config import database_url
from common.events import envelope, utcnow

log = logging.getLogger(__name__)


def make_engine(url: str) -> sa.Engine:
    # hide_parameters: a database error's text would otherwise carry the
    # statement's values (names, phone numbers) into tracebacks and logs.
    if url.startswith("postgresql"):
        _make_psycopg2_cooperative()
        return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, hide_parameters=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, hide_parameters=True)

    @sa.event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


def _make_psycopg2_cooperative() -> None:
    # Under eventlet a blocking libpq call would stall every greenthread of
    # the service; psycogreen makes psycopg2 yield while it waits.
    try:
        import eventlet.patcher
    except ImportError:  # pragma: no cover
        return
    if eventlet.patcher.is_monkey_patched("socket"):
        from psycogreen.eventlet import patch_psycopg

        patch_psycopg()


class UnitOfWork:
    """One transaction: the records it changes and the events it emits."""

    def __init__(self, session: Session, producer: str, correlation_id: str, actor: str | None):
        self.session = session
        self.producer = producer
        self.correlation_id = correlation_id
        self.actor = actor
        self.emitted: list[dict] = []

    def emit(self, event_type: str, data: dict, *, version: int = 1) -> dict:
        body = envelope(
            event_type, data, producer=self.producer,
            correlation_id=self.correlation_id, version=version,
        )
        outbox.add_event(self.session, body, claimed=True)
        self.emitted.append(body)
        return body

    def claim_event(self, event_id: str, event_type: str, handler: str) -> bool:
        """Record that ``handler`` applies ``event_id`` in this transaction.
        False when it already has: the caller must then do nothing."""
        seen = self.session.execute(
            sa.select(outbox.processed_events.c.event_id).where(
                outbox.processed_events.c.event_id == event_id,
                outbox.processed_events.c.handler == handler,
            )
        ).first()
        if seen:
            return False
        self.session.execute(
            outbox.processed_events.insert().values(
                event_id=event_id, handler=handler, event_type=event_type, processed_at=utcnow()
            )
        )
        return True


class DuplicateEvent(Exception):
    """Another worker applied the same event first (lost the insert race)."""


class ServiceDatabase:
    """What ``self.db`` is inside a worker."""

    def __init__(self, provider: "Database", context: dict):
        self._provider = provider
        self._context = context

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
        events just committed (the relay covers a failed publish)."""
        session = self._provider.session_factory()
        uow = UnitOfWork(session, self._provider.service_name, self.correlation_id, self.actor)
        try:
            yield uow
            session.commit()
        except IntegrityError as exc:
            session.rollback()
            if "processed_events" in str(exc.orig).lower() or "processed_events" in str(exc):
                raise DuplicateEvent() from exc
            raise
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
        self.publish([body["event_id"] for body in uow.emitted])

    @contextmanager
    def read(self) -> Iterator[Session]:
        session = self._provider.session_factory()
        try:
            yield session
        finally:
            session.rollback()
            session.close()

    def publish(self, event_ids: list[str]) -> None:
        try:
            outbox.publish_rows(self._provider.session_factory, self._provider.publisher, event_ids)
        except Exception:  # the rows are committed; the relay will send them
            log.warning("immediate publish failed; the outbox relay will retry", exc_info=True)

    def relay(self) -> int:
        return outbox.relay_pending(self._provider.session_factory, self._provider.publisher)

    def outbox_backlog(self) -> int:
        with self.read() as session:
            return outbox.backlog(session)

    def ping(self) -> None:
        with self._provider.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))


class Database(DependencyProvider):
    """Engine and sessions for the service's own database, named by the
    service in ``DATABASE_URLS``."""

    def setup(self):
        config = self.container.config
        self.service_name = self.container.service_name
        self.engine = make_engine(database_url(config, self.service_name))
        self.session_factory = sessionmaker(self.engine, expire_on_commit=False)
        self.publisher = outbox.EventPublisher(config["AMQP_URI"], self.service_name, config)

    def stop(self):
        self.engine.dispose()

    def kill(self):
        # Close the pooled connections now rather than whenever the garbage
        # collector gets to them: under eventlet a socket closed at an
        # arbitrary moment can have its descriptor reused under a reader.
        self.engine.dispose()

    def get_dependency(self, worker_ctx):
        return ServiceDatabase(self, worker_ctx.data)


def insert_ignoring_duplicates(executor: Session | sa.Connection, table: sa.Table, values: dict, *,
                               unique: str | tuple[str, ...]) -> bool:
    """``INSERT … ON CONFLICT (unique) DO NOTHING`` on PostgreSQL and SQLite:
    the database, not a prior SELECT, decides which of two racing writers
    (replicas, redeliveries) was first. True if this call added the row."""
    bind = executor.get_bind() if isinstance(executor, Session) else executor
    insert = postgresql.insert if bind.dialect.name == "postgresql" else sqlite.insert
    columns = [unique] if isinstance(unique, str) else list(unique)
    result = executor.execute(insert(table).values(**values).on_conflict_do_nothing(index_elements=columns))
    return result.rowcount == 1

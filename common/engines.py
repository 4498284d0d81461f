"""How a service connects to its database: engines with connect and
statement timeouts, psycopg2 made cooperative under eventlet with a bound
on every wait, idle pooled connections checked without a round trip, and
what counts as an outage (a fault of the database, not of the request)."""
from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import eventlet.patcher
import psycopg2
import psycopg2.extensions as extensions
import sqlalchemy as sa
from eventlet.corolocal import local as eventlet_local
from eventlet.hubs import trampoline

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_STATEMENT_TIMEOUT = 15.0


@dataclass(frozen=True)
class Timeouts:
    """How long a service waits for its database, in seconds.

    ``connect``: to open a connection (and, for a pooled one, to get it);
    ``statement``: for one statement, enforced by PostgreSQL itself (and
    SQLite's busy timeout: how long a statement waits for a lock)."""

    connect: float = DEFAULT_CONNECT_TIMEOUT
    statement: float = DEFAULT_STATEMENT_TIMEOUT

    @classmethod
    def from_config(cls, config: dict) -> "Timeouts":
        return cls(
            connect=float(config.get("DATABASE_CONNECT_TIMEOUT") or DEFAULT_CONNECT_TIMEOUT),
            statement=float(config.get("DATABASE_STATEMENT_TIMEOUT") or DEFAULT_STATEMENT_TIMEOUT),
        )

    @property
    def budget(self) -> float:
        """All the database waiting one RPC call may do, and the longest a
        connection may stay silent: a server that is alive cancels a
        statement at ``statement``, the margin lets the cancellation travel
        back. Callers (the gateway) must wait longer than this, so that a
        worker has always given up, and rolled back, before its caller is
        told it failed."""
        return self.connect + self.statement


def make_engine(url: str, timeouts: Timeouts | None = None, autocommit: bool = False) -> sa.Engine:
    """``autocommit``: every statement is its own transaction, with no
    BEGIN or COMMIT round trip (``ServiceDatabase.audited_read``); set for
    the engine's whole pool, so no connection changes mode on its way back."""
    # hide_parameters: a database error's text would otherwise carry the
    # statement's values (names, phone numbers) into tracebacks and logs.
    timeouts = timeouts or Timeouts()
    mode = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
    if url.startswith("postgresql"):
        _make_psycopg2_cooperative()
        connect_args = {
            # Honoured by libpq when it blocks (outside eventlet); under
            # eventlet the wait callback below bounds the connect instead.
            "connect_timeout": max(2, math.ceil(timeouts.connect)),
            "options": f"-c statement_timeout={int(timeouts.statement * 1000)}",
            # A peer that stops acknowledging (a cut cable) drops the
            # connection instead of leaving the worker waiting for hours.
            "tcp_user_timeout": int(timeouts.budget * 1000),
            "connection_factory": _timed_connection_class(timeouts),
        }
        # No pre-ping: a `SELECT 1` before every checkout was one database
        # round trip in five on a read. A pooled connection the server has
        # closed (a restart, an idle timeout) is noticed on checkout without
        # one (see _discard_if_closed_by_server), and connections are
        # recycled before any server or proxy idle timeout is likely.
        engine = sa.create_engine(url, pool_pre_ping=False, pool_recycle=POOL_RECYCLE_SECONDS, pool_size=10,
                                  max_overflow=20, pool_timeout=timeouts.connect, connect_args=connect_args,
                                  hide_parameters=True, **mode)
        sa.event.listen(engine, "checkout", _discard_if_closed_by_server)
        return engine
    engine = sa.create_engine(url, connect_args={"timeout": timeouts.statement, "check_same_thread": False},
                              hide_parameters=True, **mode)

    @sa.event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


POOL_RECYCLE_SECONDS = 600

_select = eventlet.patcher.original("select")


def _discard_if_closed_by_server(dbapi_connection, _record, _proxy) -> None:
    """A pooled connection is idle: nothing should be waiting on its socket.
    When something is (the server's "terminating connection" notice and its
    end of stream after a restart, or a failover), the connection is dead;
    raising DisconnectionError makes the pool throw it away and open a new
    one, so a statement is never sent on it and no request pays for it.
    This looks at the socket without waiting and sends nothing."""
    if dbapi_connection.closed:
        raise sa.exc.DisconnectionError("the connection was closed")
    try:
        poller = _select.poll()
        poller.register(dbapi_connection.fileno(), _select.POLLIN | _select.POLLERR | _select.POLLHUP)
        waiting = poller.poll(0)
    except (OSError, ValueError, psycopg2.Error) as exc:
        raise sa.exc.DisconnectionError("the connection's socket is gone") from exc
    if waiting:
        raise sa.exc.DisconnectionError("the server closed or spoke on an idle connection")


def _timed_connection_class(timeouts: Timeouts):
    # The wait callback is global to the process; the timeouts travel with
    # each connection, as attributes of its class (they must be there while
    # the connection is still being opened).
    return type("TimedConnection", (extensions.connection,), {"clinic_timeouts": timeouts})


def _make_psycopg2_cooperative() -> None:
    # Under eventlet a blocking libpq call would stall every greenthread of
    # the service; the wait callback makes psycopg2 yield while it waits.
    if eventlet.patcher.is_monkey_patched("socket"):
        extensions.set_wait_callback(_wait_cooperatively)


class DatabaseTimeout(psycopg2.OperationalError):
    """The database did not answer within the configured timeout. A
    psycopg2 OperationalError, so SQLAlchemy treats it as any other lost
    connection: wrapped as ``sqlalchemy.exc.OperationalError``, the
    connection thrown away."""


_worker_deadline = eventlet_local()


def _wait_cooperatively(conn) -> None:
    """psycopg2's wait callback: psycogreen's, with a bound on each wait.

    When it raises, psycopg2 closes the connection, so a statement that was
    not answered in time can never complete later on it: the server sees the
    connection go and rolls the transaction back."""
    timeouts = getattr(conn, "clinic_timeouts", None)
    if timeouts is None:
        bound = None  # a connection made elsewhere (tests, tools): no bound
    elif conn.status == extensions.STATUS_SETUP:
        bound = timeouts.connect
    else:
        bound = timeouts.budget
    while True:
        state = conn.poll()
        if state == extensions.POLL_OK:
            return
        wait_for = bound
        deadline = getattr(_worker_deadline, "at", None)
        if deadline is not None and timeouts is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DatabaseTimeout("the database did not answer in time")
            wait_for = left if wait_for is None else min(wait_for, left)
        timeout_exc = DatabaseTimeout("the database did not answer in time")
        if state == extensions.POLL_READ:
            trampoline(conn.fileno(), read=True, timeout=wait_for, timeout_exc=timeout_exc)
        elif state == extensions.POLL_WRITE:
            trampoline(conn.fileno(), write=True, timeout=wait_for, timeout_exc=timeout_exc)
        else:  # pragma: no cover
            raise psycopg2.OperationalError(f"bad state from poll: {state}")


@contextmanager
def worker_deadline(at: float | None) -> Iterator[None]:
    previous = getattr(_worker_deadline, "at", None)
    _worker_deadline.at = at
    try:
        yield
    finally:
        _worker_deadline.at = previous


def is_outage(exc: BaseException) -> bool:
    """The database is unreachable, hung, or gave up (a timeout, a lost
    connection, a full pool): nothing about the request itself is wrong."""
    if isinstance(exc, (sa.exc.OperationalError, sa.exc.TimeoutError)):
        return True
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, DatabaseTimeout)

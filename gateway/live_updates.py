"""The broker side of the live-update stream: one RabbitMQ stream queue that
keeps every streamed event for a window, read by each SSE connection from
its own offset, and the one-use tickets a browser's EventSource signs in
with.

Why a stream queue: every gateway replica reads the same log, so a client
may reconnect to any replica, and a gateway restart loses nothing; the SSE
``id`` is the event's offset in that log, so ``Last-Event-ID`` replays
exactly what was published since. The window is the queue's retention
(``STREAM_MAX_AGE``, ``STREAM_MAX_BYTES``): an older cursor is answered with
a ``reset`` event.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import socket
import time
from collections import deque
from datetime import datetime, timedelta, timezone

from amqp import Message
from amqp.exceptions import AMQPError, NotFound, PreconditionFailed
from kombu import Connection
from nameko.extensions import DependencyProvider
from nameko.standalone.events import get_event_exchange

from common.errors import ServiceUnavailable
from gateway.http import BROKER_FAULTS
from common.events import iso
from gateway import stream
from gateway.signin import ROLES, StaffUser

log = logging.getLogger(__name__)

STREAM_QUEUE = "clinic.live-updates"
DEFAULT_MAX_AGE = "24h"
DEFAULT_MAX_BYTES = 1_000_000_000
# Small segments so retention drops old events close to the window rather
# than a whole default-sized (500 MB) segment at a time.
SEGMENT_BYTES = 10_000_000
DEFAULT_MAX_CLIENTS = 100
HEARTBEAT_SECONDS = 15.0
RETRY_MILLISECONDS = 3000
# Deliveries a stream consumer may hold unacknowledged (the broker requires
# a prefetch for stream consumers).
PREFETCH = 100
# How long a reconnect waits for the event its cursor names before telling
# the client to reset: an existing offset is delivered at once.
CURSOR_WAIT_SECONDS = 5.0
TICKET_SECONDS = 60
TICKET_QUEUE_PREFIX = "clinic.stream-ticket."
TICKET_SHAPE = re.compile(r"^[A-Za-z0-9_-]{20,100}$")
CONNECT_TIMEOUT = 5
AMQP_HEARTBEAT_SECONDS = 60


def stream_arguments(config) -> dict:
    max_bytes = int(config.get("STREAM_MAX_BYTES") or DEFAULT_MAX_BYTES)
    return {"x-queue-type": "stream",
            "x-max-age": str(config.get("STREAM_MAX_AGE") or DEFAULT_MAX_AGE),
            "x-max-length-bytes": max_bytes,
            # Retention drops whole segments: several per window.
            "x-stream-max-segment-size-bytes": max(1000, min(SEGMENT_BYTES, max_bytes // 4))}


def declare_stream(connection, config) -> None:
    """The stream queue, bound to each producer's event exchange for the
    streamed types only. Declared by every gateway at start and before each
    subscription: idempotent, and a broker that lost its definitions gets it
    back."""
    channel = connection.channel()
    try:
        channel.queue_declare(STREAM_QUEUE, durable=True, auto_delete=False, arguments=stream_arguments(config))
    except PreconditionFailed:
        # Declared earlier with another window: the broker keeps the first
        # one (docs/operations.md, "Queue types", says how to change it).
        log.warning("the %s stream exists with other arguments; keeping them", STREAM_QUEUE)
        channel = connection.channel()
    try:
        for event_type, streamed in stream.STREAMED.items():
            exchange = get_event_exchange(streamed.contract.producer, config)
            channel.exchange_declare(exchange.name, exchange.type, durable=exchange.durable,
                                     auto_delete=bool(exchange.auto_delete))
            channel.queue_bind(STREAM_QUEUE, exchange.name, event_type)
    finally:
        channel.close()


class LiveUpdates(DependencyProvider):
    """Opens live streams and issues tickets, bounded by STREAM_MAX_CLIENTS
    per gateway process (each stream holds a broker connection and a
    greenthread of the HTTP server, not one of nameko's workers)."""

    def setup(self):
        self.config = self.container.config
        self.amqp_uri = self.config["AMQP_URI"]
        self.max_clients = int(self.config.get("STREAM_MAX_CLIENTS") or DEFAULT_MAX_CLIENTS)
        self.open_streams = 0
        self.ticket_seconds = int(self.config.get("STREAM_TICKET_SECONDS") or TICKET_SECONDS)

    def start(self):
        # Declared now so events published before the first subscriber are
        # kept; in the background, so a broker that is away does not hold
        # up the gateway's start (each subscription declares it again).
        self.container.spawn_managed_thread(self._declare_stream)

    def _declare_stream(self):
        try:
            with self._connection() as connection:
                declare_stream(connection, self.config)
        except Exception as exc:
            log.warning("live-update stream not declared at start: %s", type(exc).__name__)

    def get_dependency(self, worker_ctx):
        return self

    def _connection(self, heartbeat: int = 0) -> Connection:
        return Connection(self.amqp_uri, connect_timeout=CONNECT_TIMEOUT, heartbeat=heartbeat)

    # ------------------------------------------------------------- streams

    def open(self, role: str, types: frozenset[str], cursor, max_seconds: float | None) -> "LiveStream":
        if self.open_streams >= self.max_clients:
            raise ServiceUnavailable(f"this gateway already serves {self.max_clients} live streams; "
                                     f"try again shortly or another gateway")
        live = LiveStream(self, role, types, cursor, max_seconds)
        self.open_streams += 1
        try:
            live.connect()
        except Exception:
            live.close()
            raise
        return live

    def released(self) -> None:
        self.open_streams -= 1

    # ------------------------------------------------------------- tickets

    def issue_ticket(self, user: StaffUser) -> dict:
        """A random ticket kept by the broker as a one-message queue named by
        the ticket's hash: any replica can redeem it, ``basic.get`` hands the
        message to one redeemer only, and its TTL ends it after
        TICKET_SECONDS. The ticket itself is never stored or logged."""
        ticket = secrets.token_urlsafe(32)
        expires_at = datetime.now(timezone.utc) + timedelta(seconds=self.ticket_seconds)
        body = json.dumps({"user": user.user, "role": user.role, "expires_at": iso(expires_at)})
        with self._connection() as connection:
            channel = connection.default_channel
            name = _ticket_queue(ticket)
            channel.queue_declare(name, durable=False, auto_delete=False, arguments={
                "x-message-ttl": self.ticket_seconds * 1000, "x-expires": self.ticket_seconds * 2000})
            channel.confirm_select()
            channel.basic_publish(Message(body, content_type="application/json"), exchange="", routing_key=name)
        return {"ticket": ticket, "expires_at": iso(expires_at)}

    def redeem_ticket(self, ticket: str) -> StaffUser | None:
        if not TICKET_SHAPE.match(ticket or ""):
            return None
        name = _ticket_queue(ticket)
        with self._connection() as connection:
            try:
                message = connection.default_channel.basic_get(name, no_ack=True)
            except NotFound:
                return None
            try:
                connection.channel().queue_delete(name)
            except Exception:
                pass  # expires by itself
        if message is None:
            return None
        facts = json.loads(message.body)
        expires_at = datetime.fromisoformat(facts["expires_at"].replace("Z", "+00:00"))
        if expires_at <= datetime.now(timezone.utc) or facts.get("role") not in ROLES:
            return None
        return StaffUser(facts["user"], facts["role"])


def _ticket_queue(ticket: str) -> str:
    return TICKET_QUEUE_PREFIX + hashlib.sha256(ticket.encode("utf-8")).hexdigest()


class LiveStream:
    """One client's stream: a WSGI response body. The server iterates it in
    its own greenthread and calls ``close`` when the client goes away."""

    def __init__(self, owner: LiveUpdates, role: str, types: frozenset[str], cursor, max_seconds):
        self.owner = owner
        self.role = role
        self.types = types
        self.cursor = cursor
        self.deadline = None if max_seconds is None else time.monotonic() + max_seconds
        self.connection = None
        self.channel = None
        self.pending: deque = deque()
        self.opening: list[bytes] = []
        self.closed = False

    def connect(self) -> None:
        """Before the answer's status is sent, so a broker that is away is a
        503, not a stream that ends at once; and once the client reads the
        first line, nothing published after it is missed."""
        # AMQP heartbeats, so a broker that vanished without closing the
        # connection ends the stream (the client reconnects elsewhere)
        # instead of leaving it silent.
        self.connection = self.owner._connection(heartbeat=AMQP_HEARTBEAT_SECONDS)
        self.connection.connect()
        declare_stream(self.connection, self.owner.config)
        self.opening = [stream.sse_retry(RETRY_MILLISECONDS), stream.sse_comment("live updates")]
        if isinstance(self.cursor, int):
            # The cursor's own event must still be there: then everything
            # after it is too.
            self._consume(self.cursor)
        elif self.cursor == "unknown":
            self.opening.append(self._reset("the cursor is not one this stream gave out"))
        else:
            self._consume("next")

    def _consume(self, offset) -> None:
        if self.channel is not None:
            self.channel.close()
        self.pending.clear()
        self.channel = self.connection.channel()
        self.channel.basic_qos(0, PREFETCH, False)
        self.channel.basic_consume(STREAM_QUEUE, callback=self.pending.append,
                                   arguments={"x-stream-offset": offset})

    def _left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def _wait(self, seconds: float) -> None:
        self.connection.heartbeat_check()
        try:
            self.connection.drain_events(timeout=max(0.01, min(seconds, AMQP_HEARTBEAT_SECONDS / 4)))
        except socket.timeout:
            pass

    def __iter__(self):
        try:
            yield from self._events()
        except (*BROKER_FAULTS, AMQPError, OSError) as exc:
            # The answer has begun: all that is left is to end it. The client
            # reconnects with its Last-Event-ID and misses nothing.
            log.warning("live stream ended: the broker connection failed (%s)", type(exc).__name__)

    def _events(self):
        yield from self.opening
        awaiting = self.cursor if isinstance(self.cursor, int) else None
        sent = self.cursor if isinstance(self.cursor, int) else None
        consumed = None
        quiet_since = time.monotonic()
        waited_from = time.monotonic()
        while True:
            left = self._left()
            if left is not None and left <= 0:
                break
            if not self.pending:
                wait = HEARTBEAT_SECONDS - (time.monotonic() - quiet_since)
                if awaiting is not None:
                    wait = min(wait, CURSOR_WAIT_SECONDS - (time.monotonic() - waited_from))
                self._wait(wait if left is None else min(wait, left))
            if awaiting is not None and not self.pending and \
                    time.monotonic() - waited_from >= CURSOR_WAIT_SECONDS:
                awaiting = None
                sent = consumed = None
                yield self._reset("the cursor is older than the stream's window or unknown")
                quiet_since = time.monotonic()
                continue
            while self.pending:
                message = self.pending.popleft()
                offset = (message.headers or {}).get("x-stream-offset")
                self.channel.basic_ack(message.delivery_tag)
                if not isinstance(offset, int) or (consumed is not None and offset <= consumed):
                    continue  # already seen
                if awaiting is not None:
                    if offset < awaiting:
                        continue  # delivered from the start of its chunk
                    if offset == awaiting:
                        awaiting = None
                        consumed = offset
                        continue
                    awaiting = None
                    sent = consumed = None
                    yield self._reset("events since the cursor are no longer kept")
                    break
                consumed = offset
                shown = self._shown(message)
                if shown is not None:
                    sent = offset
                    quiet_since = time.monotonic()
                    yield stream.sse_event(offset, shown["type"], shown)
            if time.monotonic() - quiet_since >= HEARTBEAT_SECONDS:
                if consumed is not None and consumed != sent:
                    sent = consumed
                    yield stream.sse_cursor_only(consumed)
                yield stream.sse_comment("heartbeat")
                quiet_since = time.monotonic()
        if consumed is not None and consumed != sent:
            yield stream.sse_cursor_only(consumed)

    def _reset(self, reason: str) -> bytes:
        self._consume("next")
        return stream.sse_event(None, "reset", {"type": "reset", "reason": reason})

    def _shown(self, message) -> dict | None:
        try:
            envelope = json.loads(message.body)
        except (ValueError, TypeError):
            return None
        shown = stream.projection(envelope)
        if shown is None or shown["type"] not in self.types:
            return None
        return shown

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.owner.released()
        if self.connection is not None:
            try:
                self.connection.release()
            except Exception:
                pass

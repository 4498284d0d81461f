"""The dead-letter queue: where a message goes when it cannot be applied,
until an operator replays or discards it.

One durable queue, ``clinic.dead-letters``, for every service, and one
format for every way a message dies: the letter *is* the original message
(its bytes, content type, encoding, headers and properties, untouched) with
headers saying why, so nothing about it is lost and a replay sends exactly
what was first sent. The reasons:

- ``rejected``: the handler refused the event (a ``ClinicError``, or an
  envelope that is not a valid event); retrying cannot help;
- ``gave-up``: the handler kept failing unexpectedly, ``EVENT_MAX_ATTEMPTS``
  times;
- ``outage``: an infrastructure fault (database, broker, network) outlasted
  ``EVENT_OUTAGE_WINDOW``;
- ``undecodable``: the body could not even be decoded (not JSON, a content
  type the services do not accept, nesting too deep);
- ``delivery-limit``: put there by the broker itself (a quorum queue's
  ``x-delivery-limit``: the consumer died holding it every time), with
  RabbitMQ's ``x-death`` headers instead of the clinic's.

Letters written before this format (a JSON envelope with the event under
``body``) are still read, replayed and discarded.

A discarded letter is moved, with who, when and why in its headers, to
``clinic.dead-letters.discarded``: the audit record an operator reads back
with ``clinic dead-letters list --discarded``.

Listings and log lines carry ids and reasons, never a body.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

from amqp.basic_message import Message as AmqpMessage
from amqp.exceptions import NotFound as QueueNotFound
from kombu import Connection, Exchange, Queue
from nameko.extensions import DependencyProvider

from common.events import iso, utcnow
from common.observability import DEAD_LETTERS
from common.queues import DEAD_LETTER_QUEUE, dead_letter_queue_for, type_arguments

log = logging.getLogger(__name__)

DISCARDED_QUEUE = "clinic.dead-letters.discarded"

# Classic, as declared before QUEUE_TYPE existed; services declare it with
# their configured type (queues.dead_letter_queue_for).
dead_letter_queue = dead_letter_queue_for()

REASONS = ("rejected", "gave-up", "outage", "undecodable", "delivery-limit")

H_REASON = "x-clinic-dead-letter"
H_LETTER_ID = "x-clinic-letter-id"
H_SERVICE = "x-clinic-service"
H_HANDLER = "x-clinic-handler"
H_QUEUE = "x-clinic-queue"
H_EXCHANGE = "x-clinic-exchange"
H_ROUTING_KEY = "x-clinic-routing-key"
H_ATTEMPTS = "x-clinic-attempts"
H_ERROR = "x-clinic-error"
H_FAILED_AT = "x-clinic-failed-at"
H_FIRST_FAILED_AT = "x-clinic-first-failed-at"
H_REDELIVERIES = "x-clinic-redeliveries"
H_DISCARDED_BY = "x-clinic-discarded-by"
H_DISCARDED_AT = "x-clinic-discarded-at"
H_DISCARD_REASON = "x-clinic-discard-reason"

# Headers the broker adds when it dead-letters or redelivers a message.
BROKER_HEADERS = ("x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason",
                   "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason", "x-delivery-count")
# Message properties carried over from the original, besides its headers.
_KEPT_PROPERTIES = ("content_type", "content_encoding", "correlation_id", "reply_to", "message_id",
                    "priority", "type", "app_id", "timestamp", "expiration")
# A body larger than this is not parsed for its event id in a listing.
_PEEK_LIMIT = 256 * 1024


# ------------------------------------------------------------ the format

@dataclass
class Letter:
    """One dead letter, whichever way it died. ``body`` is the original
    bytes: never log or print it."""
    letter_id: str
    reason: str
    service: str | None
    handler: str | None
    queue: str | None
    attempts: int | None
    error: str | None
    failed_at: str | None
    exchange: str | None
    routing_key: str | None
    event_id: str | None
    event_type: str | None
    body: bytes = field(repr=False, default=b"")
    properties: dict = field(repr=False, default_factory=dict)
    headers: dict = field(repr=False, default_factory=dict)
    discarded: dict | None = None

    def summary(self) -> dict:
        """What a listing shows: ids and reasons, not the body."""
        return {
            "letter_id": self.letter_id, "reason": self.reason, "failed_at": self.failed_at,
            "service": self.service, "handler": self.handler, "queue": self.queue,
            "attempts": self.attempts, "event_id": self.event_id, "event_type": self.event_type,
            "error": self.error, "content_type": self.properties.get("content_type"), "size": len(self.body),
            **({"discarded": self.discarded} if self.discarded else {}),
        }

    def original_headers(self) -> dict:
        """The headers the message was first published with."""
        return {key: value for key, value in self.headers.items()
                if not key.startswith("x-clinic-") and key not in BROKER_HEADERS}

    def is_rpc(self) -> bool:
        return bool(self.queue and self.queue.startswith("rpc-"))


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, datetime):
        return iso(value if value.tzinfo else value.replace(tzinfo=timezone.utc))
    return str(value)


def handler_of_queue(queue: str | None, routing_key: str | None = None) -> tuple[str | None, str | None]:
    """(service, handler) from the name of the queue a message died in:
    ``evt-<producer>-<event>--<service>.<method>`` or ``rpc-<service>``."""
    if not queue:
        return None, None
    if queue.startswith("evt-") and "--" in queue:
        handler = queue.rsplit("--", 1)[1]
        return handler.split(".", 1)[0], handler
    if queue.startswith("rpc-"):
        service = queue[len("rpc-"):]
        return service, routing_key if routing_key and routing_key.startswith(service + ".") else None
    return None, None


def peek_event(body: bytes, content_type: str | None) -> tuple[str | None, str | None]:
    """The event id and type of a JSON event body, if it has them."""
    if content_type not in (None, "application/json") or len(body) > _PEEK_LIMIT:
        return None, None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    event_id, event_type = data.get("event_id"), data.get("type")
    return (event_id if isinstance(event_id, str) else None,
            event_type if isinstance(event_type, str) else None)


def read_letter(body: bytes, properties: dict) -> Letter:
    """A ``Letter`` from a message fetched from a dead-letter queue."""
    body = body_bytes(body, properties.get("content_encoding"))
    headers = dict(properties.get("application_headers") or {})
    kept = {key: properties[key] for key in _KEPT_PROPERTIES if properties.get(key) is not None}
    discarded = None
    if H_DISCARDED_BY in headers:
        discarded = {"by": _text(headers.get(H_DISCARDED_BY)), "at": _text(headers.get(H_DISCARDED_AT)),
                     "reason": _text(headers.get(H_DISCARD_REASON))}

    if H_REASON in headers:
        event_id, event_type = peek_event(body, kept.get("content_type"))
        letter = Letter(
            letter_id=_text(headers.get(H_LETTER_ID)) or _fingerprint(body, headers),
            reason=_text(headers[H_REASON]), service=_text(headers.get(H_SERVICE)),
            handler=_text(headers.get(H_HANDLER)), queue=_text(headers.get(H_QUEUE)),
            attempts=_int(headers.get(H_ATTEMPTS)), error=_text(headers.get(H_ERROR)),
            failed_at=_text(headers.get(H_FAILED_AT)), exchange=_text(headers.get(H_EXCHANGE)),
            routing_key=_text(headers.get(H_ROUTING_KEY)), event_id=event_id, event_type=event_type,
            body=body, properties=kept, headers=headers, discarded=discarded)
        return letter

    deaths = headers.get("x-death") or []
    if deaths:
        # The broker's own dead-lettering (a quorum queue's delivery limit).
        death = deaths[0]
        queue = _text(death.get("queue"))
        routing_keys = death.get("routing-keys") or []
        routing_key = _text(routing_keys[0]) if routing_keys else None
        service, handler = handler_of_queue(queue, routing_key)
        reason = _text(death.get("reason")) or "dead-lettered"
        event_id, event_type = peek_event(body, kept.get("content_type"))
        return Letter(
            letter_id=_fingerprint(body, headers), reason=reason.replace("_", "-"),
            service=service, handler=handler, queue=queue,
            attempts=_int(headers.get("x-delivery-count")) or _int(death.get("count")),
            error=f"the broker dead-lettered it ({reason})", failed_at=_text(death.get("time")),
            exchange=_text(death.get("exchange")), routing_key=routing_key,
            event_id=event_id, event_type=event_type, body=body, properties=kept, headers=headers,
            discarded=discarded)

    # The JSON envelope letters were written as before this format.
    try:
        old = json.loads(body)
    except (ValueError, RecursionError):
        old = None
    if isinstance(old, dict) and "queue" in old and "body" in old:
        original = old["body"]
        original_bytes = json.dumps(original).encode("utf-8")
        event_id, event_type = peek_event(original_bytes, "application/json")
        return Letter(
            letter_id=_fingerprint(body, headers),
            reason="rejected" if old.get("attempts") == 1 else "gave-up",
            service=old.get("service"), handler=old.get("handler"), queue=old.get("queue"),
            attempts=_int(old.get("attempts")), error=old.get("error"), failed_at=old.get("failed_at"),
            exchange=None, routing_key=None, event_id=event_id, event_type=event_type,
            body=original_bytes, properties={"content_type": "application/json", "content_encoding": "utf-8"},
            headers=headers, discarded=discarded)

    return Letter(letter_id=_fingerprint(body, headers), reason="unknown", service=None, handler=None,
                  queue=None, attempts=None, error="a message of unknown origin", failed_at=None,
                  exchange=None, routing_key=None, event_id=None, event_type=None,
                  body=body, properties=kept, headers=headers, discarded=discarded)


def body_bytes(body, content_encoding: str | None) -> bytes:
    """The bytes as they travelled: py-amqp hands a body over decoded when
    its content encoding names a codec."""
    if isinstance(body, str):
        return body.encode(content_encoding or "utf-8", "surrogateescape")
    return bytes(body)


def _int(value) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _fingerprint(body: bytes, headers: dict) -> str:
    """A stable id for a letter the clinic did not number itself."""
    digest = hashlib.sha256(body)
    for death in headers.get("x-death") or []:
        digest.update(repr((death.get("queue"), death.get("time"))).encode())
    return "x" + digest.hexdigest()[:15]


def letter_properties(message_properties: dict, headers: dict) -> dict:
    kept = {key: message_properties[key] for key in _KEPT_PROPERTIES if message_properties.get(key) is not None}
    return {**kept, "application_headers": headers, "delivery_mode": 2}


def publish_raw(channel, body: bytes, properties: dict, *, exchange: str, routing_key: str) -> None:
    """Publish bytes with exactly these properties (kombu would serialize a
    body without a content type). Confirmed when the connection was opened
    with ``confirm_publish``."""
    channel.basic_publish(AmqpMessage(body, **properties), exchange=exchange, routing_key=routing_key)


# ------------------------------------------------------------ sending

def dead_letter_headers(*, reason: str, service: str, handler: str | None, queue: str | None,
                        exchange: str | None, routing_key: str | None, attempts: int | None,
                        error: BaseException | str | None) -> dict:
    if isinstance(error, BaseException):
        error = f"{type(error).__name__}: {error}"
    return {
        H_REASON: reason, H_LETTER_ID: uuid.uuid4().hex, H_SERVICE: service,
        H_HANDLER: handler or "", H_QUEUE: queue or "", H_EXCHANGE: exchange or "",
        H_ROUTING_KEY: routing_key or "", H_ATTEMPTS: attempts or 0,
        H_ERROR: (error or "")[:1000], H_FAILED_AT: iso(utcnow()),
    }


class DeadLetterPost:
    """Sends whole messages to the dead-letter queue (and, for handlers that
    retry, to the retry queues): one confirmed connection per process."""

    def __init__(self, amqp_uri: str, config: dict):
        self.amqp_uri = amqp_uri
        self.config = config
        self._connection = None
        self._declared: set[str] = set()
        # Workers share the connection: one publish (and its confirm) at a time.
        self._lock = threading.RLock()

    def _channel(self):
        if self._connection is None or not self._connection.connected:
            self._close()
            self._connection = Connection(self.amqp_uri, transport_options={"confirm_publish": True},
                                          connect_timeout=5)
            self._connection.ensure_connection(max_retries=2, interval_start=0.2)
            self._declared = set()
        return self._connection.default_channel

    def _close(self):
        if self._connection is not None:
            try:
                self._connection.release()
            except Exception:
                pass
        self._connection = None

    def declare(self, entity) -> None:
        key = getattr(entity, "name", None)
        with self._lock:
            if key in self._declared:
                return
            try:
                entity(self._channel()).declare()
            except Exception:
                self._close()
                raise
            self._declared.add(key)

    def publish(self, message, headers: dict, *, exchange: str, routing_key: str, strip=()) -> None:
        """Publish the original message's bytes and properties, its headers
        extended with ``headers`` (less ``strip``). Raises if the broker
        does not confirm."""
        all_headers = {key: value for key, value in {**(message.headers or {}), **headers}.items()
                       if key not in strip}
        properties = letter_properties(message.properties, all_headers)
        with self._lock:
            try:
                publish_raw(self._channel(), body_bytes(message.body, message.content_encoding), properties,
                            exchange=exchange, routing_key=routing_key)
            except Exception:
                self._close()  # a fresh connection next time
                raise

    def dead_letter(self, message, *, reason: str, service: str, handler: str | None, queue: str | None,
                    attempts: int | None, error) -> str:
        self.declare(dead_letter_queue_for(self.config))
        headers = dead_letter_headers(
            reason=reason, service=service, handler=handler, queue=queue,
            exchange=message.delivery_info.get("exchange"), routing_key=message.delivery_info.get("routing_key"),
            attempts=attempts, error=error)
        self.publish(message, headers, exchange="", routing_key=DEAD_LETTER_QUEUE)
        DEAD_LETTERS.labels(service, handler or queue or "-").inc()
        event_id, event_type = peek_event(body_bytes(message.body, message.content_encoding), message.content_type)
        log.error("message dead-lettered (%s) by %s after %s attempt(s): %s", reason, handler or queue,
                  attempts, _error_type(error),
                  extra={"handler": handler, "attempts": attempts, "event_id": event_id,
                         "event_type": event_type, "letter_id": headers[H_LETTER_ID]})
        return headers[H_LETTER_ID]

    def close(self):
        with self._lock:
            self._close()


def _error_type(error) -> str:
    if isinstance(error, BaseException):
        return type(error).__name__
    return str(error).split(":", 1)[0] if error else "-"


def dead_letter_undecodable(queue_consumer, message, exc: BaseException, queue: str | None) -> None:
    """A message nobody can decode: into the dead-letter queue as it came,
    then acked. If even that fails, it goes back to its queue (where a
    quorum queue's delivery limit ends the loop)."""
    from common.observability import ENTRYPOINT_CALLS

    container = queue_consumer.container
    service, handler = handler_of_queue(queue, message.delivery_info.get("routing_key"))
    try:
        post = post_for(container)
        post.dead_letter(message, reason="undecodable", service=container.service_name, handler=handler,
                         queue=queue, attempts=1, error=f"{type(exc).__name__}: the body could not be decoded "
                                                         f"as {message.content_type or 'no content type'}")
    except Exception as failure:
        log.error("an undecodable message could not be dead-lettered (%s); it goes back to %s",
                  type(failure).__name__, queue)
        queue_consumer.requeue_message(message)
        return
    if handler:
        ENTRYPOINT_CALLS.labels(container.service_name, handler.split(".", 1)[1],
                                "rpc" if queue and queue.startswith("rpc-") else "event", "rejected").inc()
    queue_consumer.ack_message(message)


_posts: dict[int, DeadLetterPost] = {}


def post_for(container) -> DeadLetterPost:
    """One DeadLetterPost per service container."""
    post = _posts.get(id(container))
    if post is None or post.config is not container.config:
        post = _posts[id(container)] = DeadLetterPost(container.config["AMQP_URI"], container.config)
    return post


def close_post(container) -> None:
    post = _posts.pop(id(container), None)
    if post is not None:
        post.close()


class DeadLetters(DependencyProvider):
    """Declares the dead-letter queue when the service starts, so that a
    letter has somewhere to go from the first message on."""

    def setup(self):
        try:
            with Connection(self.container.config["AMQP_URI"], connect_timeout=5) as connection:
                connection.ensure_connection(max_retries=1)
                dead_letter_queue_for(self.container.config)(connection.channel()).declare()
        except Exception as exc:
            # The service still starts (its consumers wait for the broker);
            # every dead letter declares the queue again before it is sent.
            log.warning("dead-letter queue not declared at start: %s", type(exc).__name__)

    def stop(self):
        close_post(self.container)

    def kill(self):
        close_post(self.container)

    def get_dependency(self, worker_ctx):
        return post_for(self.container)


# ------------------------------------------------------------ operating

def dead_letter_queue_depth(amqp_uri: str, timeout: float = 2.0) -> int:
    """Messages in the dead-letter queue, or -1 when the broker does not
    answer (a metric must not fail a scrape)."""
    try:
        with Connection(amqp_uri, connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=1, interval_start=0.2, timeout=timeout)
            channel = connection.channel()
            try:
                _, depth, _ = channel.queue_declare(DEAD_LETTER_QUEUE, passive=True)
            except QueueNotFound:
                depth = 0  # no message was ever dead-lettered on this broker
            return depth
    except Exception:
        return -1


def _fetch_all(connection: Connection, queue: str, limit: int | None):
    """Messages of ``queue``, oldest first, unacked on one channel: the
    caller acks what it moved and rejects the rest back in place."""
    if not _queue_exists(connection, queue):
        return None, []
    channel = connection.channel()
    fetched = []
    while limit is None or len(fetched) < limit:
        message = channel.basic_get(queue, no_ack=False)
        if message is None:
            break
        fetched.append(message)
    return channel, fetched


def _letter_of(message) -> Letter:
    return read_letter(message.body, dict(message.properties))


def list_letters(amqp_uri: str, limit: int = 100, discarded: bool = False) -> list[Letter]:
    """Peek at the dead letters (or the discarded ones), oldest first,
    without removing them."""
    with Connection(amqp_uri) as connection:
        channel, fetched = _fetch_all(connection, DISCARDED_QUEUE if discarded else DEAD_LETTER_QUEUE, limit)
        letters = [_letter_of(message) for message in fetched]
        # Back untouched, in order: RabbitMQ requeues to the original position.
        for message in fetched:
            channel.basic_reject(message.delivery_tag, requeue=True)
        if channel is not None:
            channel.close()
    return letters


def list_dead_letters(amqp_uri: str, limit: int = 100, discarded: bool = False) -> list[dict]:
    """The dead letters' summaries (ids and reasons, no bodies)."""
    return [letter.summary() for letter in list_letters(amqp_uri, limit, discarded)]


def _matches(letter: Letter, only_handler, only_event_id, only_letter_id) -> bool:
    return not ((only_handler and letter.handler != only_handler)
                or (only_event_id and letter.event_id != only_event_id)
                or (only_letter_id and letter.letter_id != only_letter_id))


@dataclass
class ReplayResult:
    replayed: int = 0
    # Letters left in the queue because their handler's queue does not exist
    # (the service never ran on this broker, or the handler was renamed).
    orphaned: list[str] = field(default_factory=list)


def replay_dead_letters(amqp_uri: str, only_handler: str | None = None, limit: int | None = None,
                        only_event_id: str | None = None, only_letter_id: str | None = None) -> ReplayResult:
    """Send dead letters back, as first published, to the queue of the
    handler that failed (an RPC request to its service's RPC exchange).
    Handlers are idempotent, so replaying is always safe. Letters that do
    not match the filters, or whose queue is gone, stay where they are."""
    result = ReplayResult()
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        channel, fetched = _fetch_all(connection, DEAD_LETTER_QUEUE, None)
        for message in fetched:
            letter = _letter_of(message)
            if (limit is not None and result.replayed >= limit) or not _matches(
                    letter, only_handler, only_event_id, only_letter_id):
                channel.basic_reject(message.delivery_tag, requeue=True)
                continue
            # The default exchange drops a message for a missing queue
            # without a word: look first, on a channel of its own because a
            # failed passive declare closes the channel it ran on.
            if not letter.queue or not _queue_exists(connection, letter.queue):
                result.orphaned.append(letter.queue or "(unknown queue)")
                channel.basic_reject(message.delivery_tag, requeue=True)
                continue
            properties = {**letter.properties, "application_headers": letter.original_headers(),
                          "delivery_mode": 2}
            if letter.is_rpc() and letter.exchange and letter.routing_key:
                exchange, routing_key = letter.exchange, letter.routing_key
            else:
                # Only the handler that failed, not every subscriber of the event.
                exchange, routing_key = "", letter.queue
            publish_raw(channel, letter.body, properties, exchange=exchange, routing_key=routing_key)
            channel.basic_ack(message.delivery_tag)
            result.replayed += 1
            log.info("dead letter %s replayed to %s", letter.letter_id, letter.handler or letter.queue,
                     extra={"handler": letter.handler, "event_id": letter.event_id, "letter_id": letter.letter_id})
        if channel is not None:
            channel.close()
    return result


def discard_dead_letters(amqp_uri: str, *, actor: str, reason: str, only_letter_id: str | None = None,
                         only_event_id: str | None = None, only_handler: str | None = None,
                         queue_type_config: dict | None = None) -> list[str]:
    """Move the matching dead letters to ``clinic.dead-letters.discarded``
    with who discarded them, when and why; returns their letter ids. The
    letters keep everything else, so a discard can be looked into later."""
    actor, reason = (actor or "").strip(), (reason or "").strip()
    if not actor or not reason:
        raise ValueError("a discard needs who (actor) and why (reason)")
    if not (only_letter_id or only_event_id or only_handler):
        raise ValueError("say which dead letters to discard")
    discarded = []
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        channel, fetched = _fetch_all(connection, DEAD_LETTER_QUEUE, None)
        if fetched:
            Queue(DISCARDED_QUEUE, exchange=Exchange(""), routing_key=DISCARDED_QUEUE, durable=True,
                  queue_arguments=type_arguments(queue_type_config or {}))(channel).declare()
        now = iso(utcnow())
        for message in fetched:
            letter = _letter_of(message)
            if not _matches(letter, only_handler, only_event_id, only_letter_id):
                channel.basic_reject(message.delivery_tag, requeue=True)
                continue
            headers = dict(letter.headers)
            if H_REASON not in headers and not headers.get("x-death"):
                # An old envelope: kept as it was, numbered so it can be found.
                headers[H_LETTER_ID] = letter.letter_id
            headers.update({H_DISCARDED_BY: actor[:200], H_DISCARDED_AT: now, H_DISCARD_REASON: reason[:1000]})
            properties = {**dict((k, v) for k, v in message.properties.items() if k in _KEPT_PROPERTIES),
                          "application_headers": headers, "delivery_mode": 2}
            # The letter as it lay in the dead-letter queue, byte for byte.
            publish_raw(channel, body_bytes(message.body, message.properties.get("content_encoding")),
                        properties, exchange="", routing_key=DISCARDED_QUEUE)
            channel.basic_ack(message.delivery_tag)
            discarded.append(letter.letter_id)
            # Ids only: the reason is free text an operator typed.
            log.warning("dead letter %s discarded by %s", letter.letter_id, actor,
                        extra={"handler": letter.handler, "event_id": letter.event_id,
                               "letter_id": letter.letter_id})
        if channel is not None:
            channel.close()
    return discarded


def _queue_exists(connection: Connection, queue: str) -> bool:
    probe = connection.channel()
    try:
        probe.queue_declare(queue, passive=True)
        return True
    except QueueNotFound:
        return False
    finally:
        try:
            probe.close()
        except Exception:
            pass


def listing_rows(summaries: list[dict]) -> tuple[list[str], list[list]]:
    """The table ``clinic dead-letters list`` prints."""
    columns = ["letter id", "failed at", "reason", "handler", "attempts", "event", "event id", "error"]
    rows = [[s["letter_id"], s["failed_at"] or "-", s["reason"], s["handler"] or s["queue"] or "-",
             s["attempts"] if s["attempts"] is not None else "-", s["event_type"] or "-",
             s["event_id"] or "-", (s["error"] or "")[:80]]
            for s in summaries]
    if any(s.get("discarded") for s in summaries):
        columns += ["discarded by", "at", "why"]
        for row, s in zip(rows, summaries):
            d = s.get("discarded") or {}
            row += [d.get("by") or "-", d.get("at") or "-", (d.get("reason") or "")[:60]]
    return columns, rows

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

This module is the letter: its headers and how one is read back.
``common.deadletter_post`` sends letters (what a failing handler calls);
``common.deadletter_operations`` lists, replays and discards them (what
``clinic dead-letters`` calls).
"""
from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

from amqp.basic_message import Message as AmqpMessage

from common.events import iso, utcnow
from common.queues import dead_letter_queue_for

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
KEPT_PROPERTIES = ("content_type", "content_encoding", "correlation_id", "reply_to", "message_id",
                    "priority", "type", "app_id", "timestamp", "expiration")
# A body larger than this is not parsed for its event id in a listing.
_PEEK_LIMIT = 256 * 1024


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
    kept = {key: properties[key] for key in KEPT_PROPERTIES if properties.get(key) is not None}
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
    kept = {key: message_properties[key] for key in KEPT_PROPERTIES if message_properties.get(key) is not None}
    return {**kept, "application_headers": headers, "delivery_mode": 2}


def publish_raw(channel, body: bytes, properties: dict, *, exchange: str, routing_key: str) -> None:
    """Publish bytes with exactly these properties (kombu would serialize a
    body without a content type). Confirmed when the connection was opened
    with ``confirm_publish``."""
    channel.basic_publish(AmqpMessage(body, **properties), exchange=exchange, routing_key=routing_key)


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

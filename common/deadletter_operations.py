"""Operating the dead-letter queue, for ``clinic dead-letters`` and the
metrics: its depth, listing letters without removing them, replaying them to
the handler that failed, and discarding them (moved, with who, when and why,
to ``clinic.dead-letters.discarded``). The letter's format is in
``common.deadletters``."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from amqp.exceptions import NotFound as QueueNotFound
from kombu import Connection, Exchange, Queue

from common.deadletters import (
    DISCARDED_QUEUE, H_DISCARD_REASON, H_DISCARDED_AT, H_DISCARDED_BY, H_LETTER_ID, H_REASON, KEPT_PROPERTIES,
    Letter, body_bytes, publish_raw, read_letter,
)
from common.events import iso, utcnow
from common.queues import DEAD_LETTER_QUEUE, type_arguments

# The dead-letter queue's one logger, whichever module writes (operators
# filter on it: docs/operations.md).
log = logging.getLogger("common.deadletters")


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
            properties = {**dict((k, v) for k, v in message.properties.items() if k in KEPT_PROPERTIES),
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

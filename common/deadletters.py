"""The dead-letter queue: where a message goes after its handler has failed
for good, with the error, until an operator replays it.

One durable queue, ``clinic.dead-letters``, for every service: a letter
names the service, the handler and the handler's own queue, so a replay
reaches the one handler that failed and not every subscriber of the event.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from amqp.exceptions import NotFound as QueueNotFound
from kombu import Connection, Exchange, Queue
from nameko.amqp.publish import Publisher
from nameko.extensions import DependencyProvider

from common.events import iso, utcnow
from common.observability import DEAD_LETTERS
from common.queues import DEAD_LETTER_QUEUE, dead_letter_queue_for

log = logging.getLogger(__name__)

# Classic, as declared before QUEUE_TYPE existed; services declare it with
# their configured type (queues.dead_letter_queue_for).
dead_letter_queue = dead_letter_queue_for()


class DeadLetterSender:
    def __init__(self, publisher: Publisher, service_name: str):
        self.publisher = publisher
        self.service_name = service_name

    def send(self, body, *, queue: str, handler: str, error: BaseException, attempts: int) -> None:
        letter = {
            "service": self.service_name,
            "handler": handler,
            "queue": queue,
            "attempts": attempts,
            "error": f"{type(error).__name__}: {error}"[:2000],
            "failed_at": iso(utcnow()),
            "body": body,
        }
        # Raises if the broker refuses: the caller's message is then requeued.
        self.publisher.publish(letter, exchange=Exchange(""), routing_key=DEAD_LETTER_QUEUE)
        DEAD_LETTERS.labels(self.service_name, handler).inc()
        log.error("message dead-lettered by %s after %d attempt(s): %s",
                  handler, attempts, type(error).__name__,
                  extra={"handler": handler, "attempts": attempts, **_event_fields(body)})


class DeadLetters(DependencyProvider):
    def setup(self):
        self.sender = DeadLetterSender(
            Publisher(self.container.config["AMQP_URI"], use_confirms=True,
                      declare=[dead_letter_queue_for(self.container.config)]),
            self.container.service_name,
        )

    def get_dependency(self, worker_ctx):
        return self.sender


def _event_fields(body) -> dict:
    if isinstance(body, dict):
        return {"event_id": body.get("event_id"), "event_type": body.get("type")}
    return {}


def summary(letter: dict) -> dict:
    """What an operator sees in a listing: ids and the error, not the event's
    data (which may identify a patient)."""
    body = letter.get("body")
    return {
        "failed_at": letter.get("failed_at"),
        "service": letter.get("service"),
        "handler": letter.get("handler"),
        "attempts": letter.get("attempts"),
        **_event_fields(body),
        "error": letter.get("error"),
    }


def dead_letter_queue_depth(amqp_uri: str, timeout: float = 2.0) -> int:
    """Messages in the dead-letter queue, or -1 when the broker does not
    answer (a metric must not fail a scrape)."""
    try:
        with Connection(amqp_uri, connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=1, interval_start=0.2, timeout=timeout)
            channel = connection.channel()
            try:
                _, depth, _ = dead_letter_queue(channel).queue_declare(passive=True)
            except QueueNotFound:
                depth = 0  # no message was ever dead-lettered on this broker
            return depth
    except Exception:
        return -1


def list_dead_letters(amqp_uri: str, limit: int = 100) -> list[dict]:
    """Peek at the dead letters, oldest first, without removing them."""
    letters = []
    with Connection(amqp_uri) as connection:
        # Not declared here: the services declare it with their QUEUE_TYPE.
        if not _queue_exists(connection, DEAD_LETTER_QUEUE):
            return []
        channel = connection.channel()
        fetched = []
        for _ in range(limit):
            message = channel.basic_get(DEAD_LETTER_QUEUE, no_ack=False)
            if message is None:
                break
            fetched.append(message)
            letters.append(json.loads(message.body))
        # Back untouched, in order: RabbitMQ requeues to the original position.
        for message in fetched:
            channel.basic_reject(message.delivery_tag, requeue=True)
        channel.close()
    return letters


@dataclass
class ReplayResult:
    replayed: int = 0
    # Letters left in the queue because their handler's queue does not exist
    # (the service never ran on this broker, or the handler was renamed).
    orphaned: list[str] = field(default_factory=list)


def replay_dead_letters(amqp_uri: str, only_handler: str | None = None, limit: int | None = None,
                        only_event_id: str | None = None) -> ReplayResult:
    """Move dead letters back onto the queue of the handler that failed.
    Handlers are idempotent, so replaying is always safe. Letters that do
    not match the filters, or whose queue is gone, stay where they are."""
    result = ReplayResult()
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        if not _queue_exists(connection, DEAD_LETTER_QUEUE):
            return result
        channel = connection.channel()
        producer = connection.Producer(channel=channel)
        kept = []
        while limit is None or result.replayed < limit:
            message = channel.basic_get(DEAD_LETTER_QUEUE, no_ack=False)
            if message is None:
                break
            letter = json.loads(message.body)
            if (only_handler and letter.get("handler") != only_handler) or (
                    only_event_id and _event_fields(letter.get("body")).get("event_id") != only_event_id):
                kept.append(message)
                continue
            # The default exchange drops a message for a missing queue
            # without a word: look first, on a channel of its own because a
            # failed passive declare closes the channel it ran on.
            if not _queue_exists(connection, letter["queue"]):
                result.orphaned.append(letter["queue"])
                kept.append(message)
                continue
            producer.publish(
                letter["body"], exchange="", routing_key=letter["queue"],
                serializer="json", delivery_mode=2,
            )
            channel.basic_ack(message.delivery_tag)
            result.replayed += 1
            log.info("dead letter replayed to %s", letter["handler"],
                     extra={"handler": letter.get("handler"), **_event_fields(letter.get("body"))})
        for message in kept:
            channel.basic_reject(message.delivery_tag, requeue=True)
        channel.close()
    return result


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

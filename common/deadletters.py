"""The dead-letter queue: where a message goes after its handler has failed
for good, with the error, until an operator replays it."""
from __future__ import annotations

import json
import logging

from kombu import Connection, Exchange, Queue
from nameko.amqp.publish import Publisher
from nameko.extensions import DependencyProvider

from common.events import isoformat, utcnow

log = logging.getLogger(__name__)

DEAD_LETTER_QUEUE = "clinic.dead-letters"
dead_letter_queue = Queue(DEAD_LETTER_QUEUE, exchange=Exchange(""), routing_key=DEAD_LETTER_QUEUE, durable=True)


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
            "failed_at": isoformat(utcnow()),
            "body": body,
        }
        # Raises if the broker refuses: the caller's message is then requeued.
        self.publisher.publish(letter, exchange=Exchange(""), routing_key=DEAD_LETTER_QUEUE)
        log.error("message dead-lettered by %s after %d attempt(s): %s",
                  handler, attempts, type(error).__name__)


class DeadLetters(DependencyProvider):
    def setup(self):
        self.sender = DeadLetterSender(
            Publisher(self.container.config["AMQP_URI"], use_confirms=True, declare=[dead_letter_queue]),
            self.container.service_name,
        )

    def get_dependency(self, worker_ctx):
        return self.sender


def list_dead_letters(amqp_uri: str, limit: int = 100) -> list[dict]:
    """Peek at the dead letters without removing them."""
    letters = []
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        dead_letter_queue(channel).declare()
        fetched = []
        for _ in range(limit):
            message = channel.basic_get(DEAD_LETTER_QUEUE, no_ack=False)
            if message is None:
                break
            fetched.append(message)
            letters.append(json.loads(message.body))
        # Put them back untouched, in order.
        for message in fetched:
            channel.basic_reject(message.delivery_tag, requeue=True)
        channel.close()
    return letters


def replay_dead_letters(amqp_uri: str, only_handler: str | None = None, limit: int | None = None) -> int:
    """Move dead letters back onto the queue of the handler that failed.
    Handlers are idempotent, so replaying is always safe."""
    replayed = 0
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as connection:
        channel = connection.channel()
        dead_letter_queue(channel).declare()
        producer = connection.Producer(channel=channel)
        skipped = []
        while limit is None or replayed < limit:
            message = channel.basic_get(DEAD_LETTER_QUEUE, no_ack=False)
            if message is None:
                break
            letter = json.loads(message.body)
            if only_handler and letter.get("handler") != only_handler:
                skipped.append(message)
                continue
            producer.publish(
                letter["body"], exchange="", routing_key=letter["queue"],
                serializer="json", delivery_mode=2,
            )
            channel.basic_ack(message.delivery_tag)
            replayed += 1
        for message in skipped:
            channel.basic_reject(message.delivery_tag, requeue=True)
        channel.close()
    return replayed

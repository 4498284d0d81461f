"""Sending dead letters: the one confirmed connection per service that puts
a message that cannot be applied into ``clinic.dead-letters`` (and, for
handlers that retry, into the retry queues), and the dependency that
declares the queue when a service starts. The letter's format is in
``common.deadletters``."""
from __future__ import annotations

import logging
import threading

from kombu import Connection
from nameko.extensions import DependencyProvider

from common.deadletters import (
    H_LETTER_ID, body_bytes, dead_letter_headers, handler_of_queue, letter_properties, peek_event, publish_raw,
)
from common.observability import DEAD_LETTERS
from common.queues import DEAD_LETTER_QUEUE, dead_letter_queue_for

# The dead-letter queue's one logger, whichever module writes (operators
# filter on it: docs/operations.md).
log = logging.getLogger("common.deadletters")


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

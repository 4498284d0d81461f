"""Entrypoint decorators shared by every service.

``consumes`` turns a function of ``(self, uow, event)`` into a nameko event
handler that:
- shares work between replicas (SERVICE_POOL) and acks only after its
  transaction has committed;
- applies each ``event_id`` once, whatever RabbitMQ redelivers;
- retries a failing handler with backoff, and after ``EVENT_MAX_ATTEMPTS``
  sends the message, with its error, to the dead-letter queue.
"""
from __future__ import annotations

import functools
import logging

import eventlet
from nameko.events import SERVICE_POOL

from common.database import DuplicateEvent
from common.errors import ClinicError
from common.events import Event
from common.queues import ClinicEventHandler, ClinicRpc

log = logging.getLogger(__name__)

DEFAULT_MAX_ATTEMPTS = 5

# RPC methods raise ClinicError for bad input or illegal moves: an expected
# outcome, counted as "rejected" rather than "error".
def rpc(fn=None, **options):
    # Not functools.partial: nameko's bare-decorator form (``@rpc`` with no
    # call) drops keyword arguments, so expected_exceptions would be lost.
    options.setdefault("expected_exceptions", (ClinicError,))
    return ClinicRpc.decorator(**options) if fn is None else ClinicRpc.decorator(**options)(fn)


def handler_queue_name(source_service: str, event_type: str, service_name: str, method_name: str) -> str:
    # nameko's naming for SERVICE_POOL handlers; replaying into this queue
    # reaches the one handler that failed, not every subscriber.
    return f"evt-{source_service}-{event_type}--{service_name}.{method_name}"


def consumes(source_service: str, event_type: str):
    def decorator(fn):
        @functools.wraps(fn)
        def handle(self, body):
            handler = f"{self.name}.{fn.__name__}"
            queue = handler_queue_name(source_service, event_type, self.name, fn.__name__)
            try:
                event = Event.from_body(body)
            except ClinicError as exc:
                self.dead_letters.send(body, queue=queue, handler=handler, error=exc, attempts=1)
                return
            self.db.adopt_correlation_id(event.correlation_id)
            max_attempts = int(self.config.get("EVENT_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS))
            for attempt in range(1, max_attempts + 1):
                try:
                    with self.db.unit_of_work() as uow:
                        if not uow.claim_event(event.event_id, event.type, handler):
                            return
                        fn(self, uow, event)
                    return
                except DuplicateEvent:
                    return
                except ClinicError as exc:
                    # Deterministic rejection: retrying cannot help.
                    self.dead_letters.send(body, queue=queue, handler=handler, error=exc, attempts=attempt)
                    return
                except Exception as exc:
                    if attempt == max_attempts:
                        self.dead_letters.send(body, queue=queue, handler=handler, error=exc, attempts=attempt)
                        return
                    log.warning("handler %s failed (attempt %d of %d): %s",
                                handler, attempt, max_attempts, type(exc).__name__)
                    eventlet.sleep(min(0.1 * 2 ** attempt, 5))

        # requeue_on_error: if even dead-lettering fails, the message goes
        # back to the queue instead of being dropped.
        return ClinicEventHandler.decorator(
            source_service, event_type, handler_type=SERVICE_POOL, requeue_on_error=True
        )(handle)

    return decorator

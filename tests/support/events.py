"""A test subscriber that sees every event a service publishes on the real
broker, as an outside system would."""
from __future__ import annotations

import json
import time

import eventlet
from kombu import Connection, Queue
from nameko.standalone.events import get_event_exchange


class EventRecorder:
    def __init__(self, amqp_uri: str):
        self.connection = Connection(amqp_uri)
        self.channel = self.connection.channel()
        self.queues: list[Queue] = []
        self.seen: list[dict] = []

    def listen(self, *service_names: str) -> "EventRecorder":
        for service_name in service_names:
            exchange = get_event_exchange(service_name, {})
            queue = Queue(f"test-recorder-{service_name}-{id(self)}", exchange=exchange, routing_key="#",
                          exclusive=True, auto_delete=True)
            queue(self.channel).declare()
            self.queues.append(queue)
        return self

    def _drain(self) -> None:
        for queue in self.queues:
            while True:
                message = self.channel.basic_get(queue.name, no_ack=True)
                if message is None:
                    break
                self.seen.append(json.loads(message.body))

    def events(self, event_type: str | None = None) -> list[dict]:
        self._drain()
        return [e for e in self.seen if event_type is None or e["type"] == event_type]

    def wait_for(self, event_type: str, where=lambda event: True, timeout: float = 10.0, count: int = 1) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            matching = [e for e in self.events(event_type) if where(e)]
            if len(matching) >= count:
                return matching[count - 1]
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no {event_type} event within {timeout}s; saw {[e['type'] for e in self.seen]}")
            eventlet.sleep(0.05)

    def close(self) -> None:
        try:
            self.channel.close()
        finally:
            self.connection.release()


def publish_event(amqp_uri: str, producer: str, event_type: str, data: dict, *,
                  event_id: str | None = None, occurred_at: str | None = None,
                  correlation_id: str | None = None) -> dict:
    """Publish one envelope as ``producer`` would (same exchange and routing
    key), to drive a consumer without running the producer. Returns the body;
    publish it again with the same ``event_id`` to test idempotency."""
    from common.events import envelope
    from common.outbox import EventPublisher

    body = envelope(event_type, data, producer=producer, correlation_id=correlation_id)
    if event_id:
        body["event_id"] = event_id
    if occurred_at:
        body["occurred_at"] = occurred_at
    EventPublisher(amqp_uri, producer).publish(event_type, body)
    return body


def republish(amqp_uri: str, body: dict) -> None:
    """Deliver an already-published envelope again, unchanged."""
    from common.outbox import EventPublisher

    EventPublisher(amqp_uri, body["producer"]).publish(body["type"], body)


# Values that other fields' plain strings would not be (a route billing
# prices, a time zone notifications can read).
_EXAMPLE_STRINGS = {
    "route": "iv_infusion", "drug": "ketamine", "time_zone": "America/New_York", "sex": "female",
    "currency": "USD", "mrn": "MRN0000042", "given_name": "Ana", "family_name": "Lopez",
    "phone": "+14155550123", "email": "ana@example.com", "number": "INV-000042", "reason_code": "other",
    "cancelled_by_role": "front_desk", "band": "moderate", "instrument": "phq9",
}


def example_data(contract, **overrides) -> dict:
    """Valid ``data`` for an event contract, every field given (as its
    producer would send it), with ``overrides`` on top: for tests that drive
    a consumer and care about a few fields only."""
    return {**_example_of(contract), **overrides}


def _example_of(model) -> dict:
    from common.events import iso, utcnow

    def value(name, annotation):
        import types
        import typing
        from datetime import date, datetime

        from pydantic import BaseModel

        while typing.get_origin(annotation) is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        origin = typing.get_origin(annotation)
        if origin in (typing.Union, types.UnionType):
            return value(name, next(a for a in typing.get_args(annotation) if a is not type(None)))
        if origin is typing.Literal:
            return typing.get_args(annotation)[0]
        if origin is list:
            [item] = typing.get_args(annotation)
            return [value(name, item)] if isinstance(item, type) and issubclass(item, BaseModel) else (
                [value(name, item)] if item is not str else [f"{name}-1"])
        if origin is dict:
            return {"phq9": value(name, typing.get_args(annotation)[1])}
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return _example_of(annotation)
        if annotation is datetime:
            return iso(utcnow())
        if annotation is date:
            return utcnow().date().isoformat()
        if annotation is bool:
            return False
        if annotation is int:
            return 1
        if annotation is float:
            return 1.0
        return _EXAMPLE_STRINGS.get(name, f"{name}-1")

    return {name: value(name, info.annotation) for name, info in model.model_fields.items()}

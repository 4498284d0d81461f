"""The event envelope every service publishes and consumes (DESIGN.md §3),
and the base of the event contracts: one pydantic model per event type and
version, declared beside its producer (``services/<producer>/events.py``),
which the producer emits and every consumer parses.

A contract is strict where a mistake is made and lenient where a newer
producer is met: built by the producer (``SessionCompleted(...)``) every
field must be given and an unknown one is an error, so a misspelt key fails
in the producer's own tests; parsed by a consumer (``EventData.received``)
fields it does not declare are ignored, since a producer may add fields in a
compatible version, while a missing or mistyped one is a bad message."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import (
    AfterValidator, BaseModel, ConfigDict, Field, PlainSerializer, ValidationError, ValidationInfo,
    model_validator,
)

from common.errors import ValidationFailed


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(moment: datetime | None) -> datetime | None:
    """An aware datetime; a naive one (SQLite hands them back) means UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment


def iso(moment: datetime | None) -> str | None:
    """The wire form of an instant: UTC, ISO 8601, with ``Z``."""
    if moment is None:
        return None
    return as_utc(moment).astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _utc(moment: datetime) -> datetime:
    return as_utc(moment).astimezone(timezone.utc)


# An instant on the wire: UTC with ``Z`` (naive means UTC, as SQLite hands
# them back); an aware datetime in Python.
Instant = Annotated[datetime, AfterValidator(_utc), PlainSerializer(iso, return_type=str, when_used="json")]
Day = date


class Event(BaseModel):
    """The envelope as it arrives, ``data`` not yet read."""

    event_id: str
    type: str
    version: int = 1
    occurred_at: datetime
    producer: str
    correlation_id: str
    data: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_body(cls, body: Any) -> "Event":
        try:
            return cls.model_validate(body)
        except Exception as exc:  # a foreign or corrupt message: dead-letter it
            # Fields and what is wrong with them, never the values: the
            # reason is shown in dead-letter listings.
            problems = exc.errors(include_input=False, include_url=False) if hasattr(exc, "errors") else []
            detail = "; ".join(f"{'.'.join(map(str, p['loc'])) or 'body'}: {p['msg']}" for p in problems)
            raise ValidationFailed(f"not a clinic event envelope: {detail or type(exc).__name__}") from None


def envelope(
    event_type: str,
    data: dict,
    *,
    producer: str,
    correlation_id: str | None = None,
    version: int = 1,
    occurred_at: datetime | None = None,
) -> dict:
    event_id = str(uuid.uuid4())
    return {
        "event_id": event_id,
        "type": event_type,
        "version": version,
        "occurred_at": iso(occurred_at or utcnow()),
        "producer": producer,
        "correlation_id": correlation_id or event_id,
        "data": data,
    }


# ---------------------------------------------------------------- contracts

_RECEIVED = "received"


class EventPart(BaseModel):
    """A contract, or a structured value inside one (an alert, a booked
    appointment): unknown fields are refused when the producer builds it and
    ignored when a consumer reads it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="wrap")
    @classmethod
    def _ignore_unknown_fields_when_received(cls, value: Any, handler, info: ValidationInfo):
        if isinstance(value, dict) and info.context and info.context.get(_RECEIVED):
            value = {name: item for name, item in value.items() if name in cls.model_fields}
        return handler(value)


class EventData(EventPart):
    """The ``data`` of one event type in one version. A subclass names its
    ``producer`` (the service whose exchange it is published on), ``type``
    and ``version``; a producer's own base (``SessionsEvent``) usually sets
    ``producer`` once."""

    producer: ClassVar[str]
    type: ClassVar[str]
    version: ClassVar[int] = 1

    @classmethod
    def contract(cls) -> str:
        return f"{cls.type} v{cls.version}"

    def facts(self) -> dict:
        """The JSON the envelope carries as ``data``."""
        return self.model_dump(mode="json")

    @classmethod
    def received(cls, data: Any):
        """The data a consumer was sent, read with this contract. A missing
        or mistyped field raises ``ValidationFailed`` naming the fields (never
        their values: the reason is shown in dead-letter listings)."""
        if not isinstance(data, dict):
            raise ValidationFailed(f"{cls.contract()}: data is not an object",
                                   [{"field": "data", "message": "expected an object"}])
        try:
            return cls.model_validate(data, context={_RECEIVED: True})
        except ValidationError as exc:
            problems = [{"field": ".".join(str(part) for part in problem["loc"]) or "data",
                         "message": problem["msg"]}
                        for problem in exc.errors(include_input=False, include_url=False, include_context=False)]
            detail = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
            raise ValidationFailed(f"{cls.contract()} data does not match its contract: {detail}",
                                   problems) from None


class UnknownEventVersion(ValidationFailed):
    """An event of a version this consumer has no contract for: dead-lettered
    until a consumer that knows it is deployed and the letter replayed."""


DataT = TypeVar("DataT", bound=EventData)


@dataclass(frozen=True)
class Received(Generic[DataT]):
    """An event as a handler sees it: the envelope, with ``data`` read by
    the contract of its version. ``body`` is the envelope exactly as it
    arrived (fields the contract does not know included): what a consumer
    that passes events on forwards."""

    event_id: str
    type: str
    version: int
    occurred_at: datetime
    producer: str
    correlation_id: str
    data: DataT
    body: dict = field(repr=False, compare=False)

    @classmethod
    def read(cls, body: Any, contracts: dict[int, type[EventData]]) -> "Received":
        envelope = Event.from_body(body)
        contract = contracts.get(envelope.version)
        if contract is None:
            raise UnknownEventVersion(f"unknown version {envelope.version} of {envelope.type}")
        if envelope.type != contract.type:
            raise ValidationFailed(f"a {envelope.type} envelope delivered as {contract.type}")
        return cls(event_id=envelope.event_id, type=envelope.type, version=envelope.version,
                   occurred_at=as_utc(envelope.occurred_at), producer=envelope.producer,
                   correlation_id=envelope.correlation_id, data=contract.received(envelope.data),
                   body=body)


def contract_versions(contracts: tuple[type[EventData], ...]) -> dict[int, type[EventData]]:
    """The contracts one handler takes, by version: one event type of one
    producer, each version once."""
    if not contracts or not all(isinstance(c, type) and issubclass(c, EventData) for c in contracts):
        raise TypeError("consumes() takes the contract classes (EventData subclasses) of one event type")
    first = contracts[0]
    by_version = {}
    for contract in contracts:
        if (contract.producer, contract.type) != (first.producer, first.type):
            raise TypeError(f"one handler consumes one event type: {first.contract()} and {contract.contract()}")
        if contract.version in by_version:
            raise TypeError(f"{contract.contract()} given twice")
        by_version[contract.version] = contract
    return by_version

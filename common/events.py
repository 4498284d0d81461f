"""The event envelope every service publishes and consumes (DESIGN.md §3)."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, Field

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


class Event(BaseModel):
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

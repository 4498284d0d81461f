"""The event envelope every service publishes and consumes (DESIGN.md §3)."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, Field

from common.errors import ValidationFailed


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def isoformat(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


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
            raise ValidationFailed(f"not a clinic event envelope: {exc}") from None


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
        "occurred_at": isoformat(occurred_at or utcnow()),
        "producer": producer,
        "correlation_id": correlation_id or event_id,
        "data": data,
    }

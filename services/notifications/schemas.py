"""Inputs of the notifications RPC methods and the views they return."""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from common.events import as_utc, iso
from common.validation import Schema

StatusName = Literal["queued", "retrying", "sent", "dead", "skipped", "cancelled"]
ChannelName = Literal["email", "sms", "webhook", "staff_email", "staff_webhook"]


class PreferencesInput(Schema):
    """The patient's own wishes, on top of the consents recorded in intake:
    a channel turned off here is not used even with consent."""

    email: bool | None = None
    sms: bool | None = None

    @model_validator(mode="after")
    def _something(self):
        if self.email is None and self.sms is None:
            raise ValueError("give email and/or sms (true or false)")
        return self


class MessageQuery(Schema):
    patient_id: str | None = Field(default=None, max_length=36)
    appointment_id: str | None = Field(default=None, max_length=36)
    status: StatusName | None = None
    kind: str | None = Field(default=None, max_length=40)
    channel: ChannelName | None = None
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0)


class ResendInput(Schema):
    # Staff may mark a resend urgent: it then ignores the patient's quiet hours.
    urgent: bool = False


def parse_instant(value) -> datetime | None:
    """An ISO 8601 instant from an event (``Z`` or an offset) or a stored
    value (naive from SQLite, meaning UTC) as an aware datetime."""
    if value in (None, ""):
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return as_utc(moment)




def message_view(message) -> dict:
    return {
        "notification_id": message.notification_id,
        "dedupe_key": message.dedupe_key,
        "kind": message.kind,
        "channel": message.channel,
        "recipient": message.recipient,
        "patient_id": message.patient_id,
        "appointment_id": message.appointment_id,
        "target": message.target,
        "urgent": message.urgent,
        "status": message.status,
        "due_at": iso(message.due_at),
        "attempts": message.attempts,
        "last_error": message.last_error,
        "sent_at": iso(message.sent_at),
        "created_at": iso(message.created_at),
        "source_event_id": message.source_event_id,
    }


def log_view(entry) -> dict:
    return {"at": iso(entry.at), "status": entry.status, "attempt": entry.attempt,
            "detail": entry.detail, "actor": entry.actor}


def preferences_view(recipient) -> dict:
    def channel(name: str) -> dict:
        return {
            "consented": bool(getattr(recipient, f"{name}_consent")),
            "enabled": bool(getattr(recipient, f"{name}_enabled")),
            "address_on_record": bool(getattr(recipient, "email" if name == "email" else "phone")),
        }

    return {"patient_id": recipient.patient_id, "time_zone": recipient.time_zone,
            "email": channel("email"), "sms": channel("sms")}

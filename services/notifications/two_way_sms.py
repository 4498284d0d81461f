"""Two-way SMS as plain code: checking that an inbound message really comes
from the SMS provider, reading what the patient texted (a carrier keyword,
a reply to the pre-visit message, or anything else), and when the pre-visit
message goes out. Nothing here touches a database, the broker or the
network.

The provider signs each inbound request as notifications signs its own
webhooks (services.notifications.channels): ``X-Sms-Signature:
sha256=<hex HMAC-SHA256(secret, "<X-Sms-Timestamp>.<raw body>")>``. The
timestamp must be within the tolerance of this server's clock; a message
id seen before is refused (the replay store is the inbound_sms table)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator
from services.notifications.channels import verify
from services.notifications.domain import UTC, Kind, PlannedReminder, Timing, when_to_send

SIGNATURE_HEADER = "X-Sms-Signature"
TIMESTAMP_HEADER = "X-Sms-Timestamp"
DEFAULT_TOLERANCE_SECONDS = 300
# An SMS body longer than ten concatenated segments is not a reply.
MAX_BODY_CHARACTERS = 1600


class Keyword(str, Enum):
    """What an inbound text is, once read."""

    STOP = "stop"
    START = "start"
    HELP = "help"
    YES = "yes"
    NO = "no"
    OTHER = "other"


# The carrier keywords every US sender must honour (CTIA), and the two
# answers the pre-visit message asks for. Matched against the whole text.
WORDS = {
    Keyword.STOP: frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}),
    Keyword.START: frozenset({"START", "UNSTOP"}),
    Keyword.HELP: frozenset({"HELP", "INFO"}),
    Keyword.YES: frozenset({"YES", "Y"}),
    Keyword.NO: frozenset({"NO", "N"}),
}
CONSENT_KEYWORDS = (Keyword.STOP, Keyword.START)
ANSWERS = {Keyword.YES: "confirmed", Keyword.NO: "declined"}

# Answers to a patient's own text: carriers require them even once the
# patient has opted out (the STOP confirmation is the last message sent),
# so they pass the consent check and quiet hours, and go by SMS only.
KEYWORD_REPLY_KINDS = frozenset({Kind.SMS_OPT_OUT_CONFIRMATION, Kind.SMS_OPT_IN_CONFIRMATION, Kind.SMS_HELP_REPLY})
# Asked and answered by text: no email counterpart.
SMS_ONLY_KINDS = KEYWORD_REPLY_KINDS | {Kind.PREVISIT_INSTRUCTIONS}


def classify(text: str | None) -> Keyword:
    """The keyword a text is, whatever its case, spacing and closing
    punctuation ("  stop. " is STOP); a keyword inside a longer sentence
    is not one ("please stop by" is OTHER)."""
    words = " ".join(re.sub(r"[.!?,;:]+$", "", (text or "").strip()).split()).upper()
    return next((keyword for keyword, spellings in WORDS.items() if words in spellings), Keyword.OTHER)


def previsit_answer(keyword: Keyword) -> str:
    """What a reply to the pre-visit message says: ``confirmed`` (YES),
    ``declined`` (NO) or ``unrecognised`` (anything else, which staff read
    as a question to call back about)."""
    return ANSWERS.get(keyword, "unrecognised")


# ---------------------------------------------------------------- the request


@dataclass(frozen=True)
class InboundSettings:
    secret: str | None
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS

    @classmethod
    def from_config(cls, section: dict) -> "InboundSettings":
        return cls(secret=str(section.get("SMS_WEBHOOK_SECRET") or "") or None,
                   tolerance_seconds=int(section.get("SMS_WEBHOOK_TOLERANCE_SECONDS") or DEFAULT_TOLERANCE_SECONDS))


def signed_by_provider(settings: InboundSettings, timestamp: str | None, signature: str | None, body: bytes,
                       now: float | None = None) -> bool:
    """A signature made with the configured secret over this timestamp and
    body, with the timestamp within the tolerance (either side)."""
    if not settings.secret:
        return False
    return verify(settings.secret, timestamp, signature, body, tolerance_seconds=settings.tolerance_seconds,
                  now=now)


E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class InboundSms(BaseModel):
    """What the provider posts for each text a patient sends (JSON). Fields
    it adds besides these are ignored; the body is read, never kept."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, populate_by_name=True)

    message_id: str = Field(min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$",
                            description="the provider's id, unique per message (printable ASCII)")
    sender: str = Field(alias="from", description="E.164, e.g. +14155550123")
    to: str | None = Field(default=None, max_length=20)
    body: str = Field(max_length=MAX_BODY_CHARACTERS)

    @field_validator("sender")
    @classmethod
    def _e164(cls, value: str) -> str:
        compact = re.sub(r"[\s\-().]", "", value)
        if not E164.match(compact):
            raise ValueError("must be an E.164 number such as +14155550123")
        return compact


def sender_hint(number: str) -> str:
    """What the audit trail keeps of a number it does not know: enough to
    match a complaint, not enough to text it back."""
    return f"…{number[-4:]}"


# ---------------------------------------------------------------- the pre-visit message


def plan_previsit(starts_at: datetime, now: datetime, zone: str, timing: Timing) -> PlannedReminder:
    """The pre-visit message: the day before the appointment at
    ``previsit_at`` on the patient's wall clock; booked later than that, as
    soon as quiet hours allow, as long as it still arrives
    ``previsit_min_lead`` before the start (enough to fast and find an
    escort)."""
    tz = ZoneInfo(zone)
    day_before = starts_at.astimezone(tz).date() - timedelta(days=1)
    desired = max(datetime.combine(day_before, timing.previsit_at, tzinfo=tz).astimezone(UTC), now)
    return PlannedReminder("previsit", desired, when_to_send(desired, zone, timing, appointment_starts_at=starts_at,
                                                             lead=timing.previsit_min_lead))


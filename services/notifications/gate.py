"""The send-time gate for patient messages, as plain code: whether a due
message goes to the patient now, later (quiet hours) or not at all
(consent withdrawn, no address, the appointment cancelled, moved or too
near), from the facts notifications holds at that moment; and a course
confirmation's appointments as they then stand. Nothing here touches a
database, the broker or the network."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.notifications.domain import (
    APPOINTMENT_KINDS, DEFAULT_TIME_ZONE, TIMED_KINDS, UTC, Channel, Kind, Timing, when_to_send,
)
from services.notifications.two_way_sms import KEYWORD_REPLY_KINDS


@dataclass(frozen=True)
class RecipientFacts:
    """The local read model of one patient, as intake last told us."""

    time_zone: str = DEFAULT_TIME_ZONE
    email: str | None = None
    phone: str | None = None
    email_consent: bool = False
    sms_consent: bool = False
    email_enabled: bool = True
    sms_enabled: bool = True

    def address(self, channel: Channel) -> str | None:
        return self.email if channel == Channel.EMAIL else self.phone

    def consented(self, channel: Channel) -> bool:
        return self.email_consent if channel == Channel.EMAIL else self.sms_consent

    def enabled(self, channel: Channel) -> bool:
        return self.email_enabled if channel == Channel.EMAIL else self.sms_enabled


@dataclass(frozen=True)
class AppointmentFacts:
    starts_at: datetime
    cancelled: bool


@dataclass(frozen=True)
class Gate:
    """What to do with a due patient message right now: ``send``, ``defer``
    (to ``until``), ``skip`` (for ``reason``) or ``wait`` (facts missing:
    treated as a failed attempt so it is retried, then dead)."""

    action: str
    reason: str | None = None
    until: datetime | None = None


def gate_patient_message(*, kind: Kind, channel: Channel, now: datetime, recipient: RecipientFacts | None,
                         timing: Timing, urgent: bool = False, appointment: AppointmentFacts | None = None,
                         planned_starts_at: datetime | None = None) -> Gate:
    """Checked at the moment of sending, not when queued, so a withdrawn
    consent, a new phone number, a cancellation or a move applies at once."""
    if recipient is None:
        return Gate("wait", "the patient's contact details have not reached notifications yet")
    if kind in KEYWORD_REPLY_KINDS:
        return Gate("send") if recipient.phone else Gate("skip", "no mobile number on record")
    if not recipient.consented(channel):
        return Gate("skip", f"no {channel.value} consent in force")
    if not recipient.enabled(channel):
        return Gate("skip", f"the patient turned {channel.value} messages off")
    if not recipient.address(channel):
        return Gate("skip", f"no {'email address' if channel == Channel.EMAIL else 'mobile number'} on record")
    timed = kind in TIMED_KINDS
    if appointment is not None and kind in APPOINTMENT_KINDS:
        if appointment.cancelled:
            return Gate("skip", "the appointment was cancelled")
        if timed and planned_starts_at is not None and appointment.starts_at != planned_starts_at:
            return Gate("skip", "the appointment was moved")
    starts_at = appointment.starts_at if appointment is not None else planned_starts_at
    if kind in APPOINTMENT_KINDS and starts_at is not None and now >= starts_at:
        return Gate("skip", "the appointment has already begun")
    if timed and starts_at is not None and now > starts_at - timing.lead(kind):
        return Gate("skip", "too late to be of use before the appointment")
    if urgent or not timing.quiet.contains(now, recipient.time_zone):
        return Gate("send")
    decision = when_to_send(now, recipient.time_zone, timing, appointment_starts_at=starts_at if timed else None,
                            lead=timing.lead(kind))
    if decision.send_at is None:
        return Gate("skip", decision.skip_reason)
    return Gate("defer", decision.deferral or "quiet hours", decision.send_at)


def course_as_it_stands(appointments: list[dict], known: dict[str, AppointmentFacts],
                        now: datetime) -> list[dict]:
    """The course's appointments as they stand when the confirmation goes
    out: a cancelled one dropped, a moved one at its new time (each change
    has its own message), one already begun left out; in time order."""
    standing = []
    for entry in appointments:
        facts = known.get(entry.get("appointment_id"))
        if facts is not None and facts.cancelled:
            continue
        starts_at = facts.starts_at if facts is not None else _instant(entry.get("starts_at"))
        if starts_at is None or starts_at <= now:
            continue
        standing.append({"appointment_id": entry.get("appointment_id"),
                         "starts_at": starts_at.astimezone(UTC).isoformat().replace("+00:00", "Z")})
    return sorted(standing, key=lambda e: e["starts_at"])


def _instant(value) -> datetime | None:
    if not value:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

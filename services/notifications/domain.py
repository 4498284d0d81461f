"""Notification rules as plain code: which messages a clinic event causes,
when each may go out (quiet hours in the patient's time zone, reminder
offsets, the day-after follow-up) and what happens after a delivery attempt
(retry with backoff, or dead). Whether a due message may go to the patient
now is ``services.notifications.gate``; the two-way SMS rules (what a
patient texted, the pre-visit message) are ``services.notifications.
two_way_sms``. Nothing here touches a database, the broker or the network."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import Enum
from zoneinfo import ZoneInfo

UTC = timezone.utc
DEFAULT_TIME_ZONE = "America/New_York"


class Kind(str, Enum):
    WELCOME = "welcome"
    APPOINTMENT_CONFIRMATION = "appointment_confirmation"
    # One message for a whole booked course, listing its dates.
    COURSE_CONFIRMATION = "course_confirmation"
    APPOINTMENT_REMINDER = "appointment_reminder"
    # The day before: fasting, clear liquids, an escort; the patient replies
    # YES or NO by SMS (two_way_sms).
    PREVISIT_INSTRUCTIONS = "previsit_instructions"
    APPOINTMENT_MOVED = "appointment_moved"
    APPOINTMENT_CANCELLED = "appointment_cancelled"
    SESSION_FOLLOW_UP = "session_follow_up"
    # A link to a questionnaire the patient fills in (intake's self-report).
    SELF_REPORT_REQUEST = "self_report_request"
    INVOICE_ISSUED = "invoice_issued"
    PAYMENT_RECEIPT = "payment_receipt"
    INVOICE_OVERDUE = "invoice_overdue"
    REFUND_ISSUED = "refund_issued"
    # Answers to the carrier keywords a patient texts (STOP, START, HELP).
    SMS_OPT_OUT_CONFIRMATION = "sms_opt_out_confirmation"
    SMS_OPT_IN_CONFIRMATION = "sms_opt_in_confirmation"
    SMS_HELP_REPLY = "sms_help_reply"
    STAFF_RISK_ALERT = "staff_risk_alert"
    STAFF_VITALS_ALERT = "staff_vitals_alert"
    WEBHOOK = "webhook"


class Channel(str, Enum):
    EMAIL = "email"
    SMS = "sms"
    WEBHOOK = "webhook"
    STAFF_EMAIL = "staff_email"
    STAFF_WEBHOOK = "staff_webhook"


class Status(str, Enum):
    QUEUED = "queued"
    RETRYING = "retrying"
    SENT = "sent"
    DEAD = "dead"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


# Statuses the scheduler still has to act on.
PENDING = (Status.QUEUED.value, Status.RETRYING.value)
PATIENT_CHANNELS = (Channel.EMAIL, Channel.SMS)
PATIENT_KINDS = frozenset(k for k in Kind if k not in (Kind.STAFF_RISK_ALERT, Kind.STAFF_VITALS_ALERT, Kind.WEBHOOK))
# Messages that belong to one appointment and lose their point when it is
# cancelled (the cancellation notice itself is the exception).
APPOINTMENT_KINDS = frozenset({Kind.APPOINTMENT_CONFIRMATION, Kind.APPOINTMENT_REMINDER, Kind.APPOINTMENT_MOVED,
                               Kind.PREVISIT_INSTRUCTIONS})
# Messages timed before an appointment: pointless once it is moved or too near.
TIMED_KINDS = frozenset({Kind.APPOINTMENT_REMINDER, Kind.PREVISIT_INSTRUCTIONS})


# What patients' lock screens and shared inboxes may show: the display
# name, the sender and every SMS and subject carry none of these by default.
DEFAULT_DISPLAY_NAME = "the clinic"
TREATMENT_WORDS = ("ketamine", "esketamine", "spravato", "infusion", "depressi", "ptsd", "psychiatr", "psychedelic",
                   "mental health", "anxiety", "bipolar", "trauma", "suicid", "addiction")


def treatment_words_in(text: str | None) -> list[str]:
    """The words in ``text`` that would tell an onlooker what the patient
    is treated for (case-insensitive, also inside a longer word)."""
    lowered = (text or "").lower()
    return [word for word in TREATMENT_WORDS if word in lowered]


def dedupe_key(reason: str, kind: Kind | str, channel: Channel | str, target: str | None = None) -> str:
    """The reason a message exists, unique in the database: the same event
    delivered twice, or handled by two replicas, cannot queue a second one."""
    parts = [reason, _value(kind), _value(channel)]
    if target:
        parts.append(target)
    return ":".join(parts)


def _value(member) -> str:
    return member.value if isinstance(member, Enum) else str(member)


# --------------------------------------------------------------------------
# Timing: quiet hours, reminders, follow-ups
# --------------------------------------------------------------------------


def parse_clock(value: str | time) -> time:
    if isinstance(value, time):
        return value
    hours, _, minutes = str(value).partition(":")
    return time(int(hours), int(minutes or 0))


@dataclass(frozen=True)
class QuietHours:
    """Local times between which patients are not messaged. ``start`` after
    ``end`` spans midnight (the usual 21:00–08:00); equal means none."""

    start: time = time(21, 0)
    end: time = time(8, 0)

    def contains(self, moment: datetime, zone: str) -> bool:
        if self.start == self.end:
            return False
        local = moment.astimezone(ZoneInfo(zone)).time()
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_allowed(self, moment: datetime, zone: str) -> datetime:
        """``moment`` itself when it is outside quiet hours, otherwise the
        morning they end (in UTC), whatever the DST offset that day."""
        if not self.contains(moment, zone):
            return moment
        tz = ZoneInfo(zone)
        local = moment.astimezone(tz)
        day: date = local.date()
        if self.start > self.end and local.time() >= self.start:
            day += timedelta(days=1)
        # Built from the local calendar date, not by adding hours, so the
        # morning is 08:00 on the wall clock on DST-change days too.
        return datetime.combine(day, self.end, tzinfo=tz).astimezone(UTC)


@dataclass(frozen=True)
class Timing:
    quiet: QuietHours = QuietHours()
    reminder_offsets: tuple[timedelta, ...] = (timedelta(hours=48), timedelta(hours=2))
    # A reminder later than this before the appointment is no use: the
    # patient must still be able to fast, arrange a ride and get there.
    min_reminder_lead: timedelta = timedelta(minutes=60)
    follow_up_at: time = time(10, 0)
    # The pre-visit message: the day before, at this local time; not at all
    # when it could only arrive less than ``previsit_min_lead`` before the
    # start (too late to fast or find an escort).
    previsit_at: time = time(10, 0)
    previsit_min_lead: timedelta = timedelta(hours=6)

    def lead(self, kind: "Kind") -> timedelta:
        return self.previsit_min_lead if kind == Kind.PREVISIT_INSTRUCTIONS else self.min_reminder_lead

    @classmethod
    def from_config(cls, section: dict) -> "Timing":
        default = cls()
        offsets = section.get("REMINDER_OFFSETS_HOURS")
        return cls(
            quiet=QuietHours(parse_clock(section.get("QUIET_HOURS_START", "21:00")),
                             parse_clock(section.get("QUIET_HOURS_END", "08:00"))),
            reminder_offsets=(tuple(sorted((timedelta(hours=float(h)) for h in offsets), reverse=True))
                              if offsets is not None else default.reminder_offsets),
            min_reminder_lead=timedelta(minutes=float(section.get("REMINDER_MIN_LEAD_MINUTES", 60))),
            follow_up_at=parse_clock(section.get("FOLLOW_UP_LOCAL_TIME", "10:00")),
            previsit_at=parse_clock(section.get("PREVISIT_LOCAL_TIME", "10:00")),
            previsit_min_lead=timedelta(hours=float(section.get("PREVISIT_MIN_LEAD_HOURS", 6))),
        )


def offset_label(offset: timedelta) -> str:
    minutes = int(offset.total_seconds() // 60)
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


@dataclass(frozen=True)
class SendDecision:
    """``send_at`` when the message should go out, or ``skip_reason``;
    ``deferral`` says why ``send_at`` is later than wanted (quiet hours),
    for the delivery log."""

    send_at: datetime | None
    skip_reason: str | None = None
    deferral: str | None = None


def when_to_send(desired: datetime, zone: str, timing: Timing, *, urgent: bool = False,
                 appointment_starts_at: datetime | None = None, lead: timedelta | None = None) -> SendDecision:
    """Quiet hours move a patient message to the morning; a reminder that
    the morning would make too late (less than ``lead`` before the start)
    is skipped instead."""
    if urgent:
        return SendDecision(desired)
    at = timing.quiet.next_allowed(desired, zone)
    lead = timing.min_reminder_lead if lead is None else lead
    if appointment_starts_at is not None and at > appointment_starts_at - lead:
        local = at.astimezone(ZoneInfo(zone))
        return SendDecision(None, f"quiet hours end at {local:%H:%M} local time, too close to the appointment")
    if at == desired:
        return SendDecision(at)
    return SendDecision(at, deferral=quiet_hours_deferral(desired, at, zone, timing.quiet))


def quiet_hours_deferral(desired: datetime, until: datetime, zone: str, quiet: QuietHours) -> str:
    """The delivery log's words for a message moved out of quiet hours."""
    tz = ZoneInfo(zone)
    return (f"quiet hours ({quiet.start:%H:%M}–{quiet.end:%H:%M} in {zone}): due at "
            f"{desired.astimezone(tz):%H:%M} local time, held until {until.astimezone(tz):%a %H:%M} local time")


@dataclass(frozen=True)
class PlannedReminder:
    label: str  # e.g. "48h": part of the dedupe key
    desired: datetime  # the offset before the start, before quiet hours
    decision: SendDecision
    # Already past at booking: nothing to record, the confirmation covers it.
    passed: bool = False


def plan_reminders(starts_at: datetime, now: datetime, zone: str, timing: Timing) -> list[PlannedReminder]:
    """One reminder per configured offset before the appointment. An offset
    already past at booking is skipped (the confirmation has just gone
    out); offsets are elapsed time, so "2 h before" is two real hours even
    across a DST change."""
    plans = []
    for offset in timing.reminder_offsets:
        label = offset_label(offset)
        desired = starts_at - offset
        if desired < now:
            plans.append(PlannedReminder(label, desired, SendDecision(None, "booked less than that before the appointment"),
                                         passed=True))
            continue
        plans.append(PlannedReminder(label, desired, when_to_send(desired, zone, timing, appointment_starts_at=starts_at)))
    return plans


def follow_up_time(ended_at: datetime, zone: str, timing: Timing) -> datetime:
    """The morning after the session, on the patient's wall clock."""
    tz = ZoneInfo(zone)
    next_day = ended_at.astimezone(tz).date() + timedelta(days=1)
    return datetime.combine(next_day, timing.follow_up_at, tzinfo=tz).astimezone(UTC)


def follow_up_too_late(ended_at: datetime, now: datetime, zone: str, timing: Timing) -> bool:
    """A follow-up "after yesterday's visit" is wrong once that day is over
    (an event replayed after an outage)."""
    due = follow_up_time(ended_at, zone, timing)
    end_of_that_day = datetime.combine(due.astimezone(ZoneInfo(zone)).date() + timedelta(days=1), time(0),
                                       tzinfo=ZoneInfo(zone))
    return now >= end_of_that_day


# --------------------------------------------------------------------------
# Delivery attempts
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """A provider's answer to one attempt. ``permanent`` failures (an
    address the provider rejects, a channel not configured) are not retried."""

    delivered: bool
    answer: str
    permanent: bool = False


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 30.0
    cap_seconds: float = 3600.0
    max_attempts: int = 8

    @classmethod
    def from_config(cls, section: dict) -> "RetryPolicy":
        return cls(float(section.get("RETRY_BASE_SECONDS", 30)), float(section.get("RETRY_CAP_SECONDS", 3600)),
                   int(section.get("MAX_ATTEMPTS", 8)))

    def delay(self, attempts_made: int) -> timedelta:
        return timedelta(seconds=min(self.base_seconds * 2 ** max(attempts_made - 1, 0), self.cap_seconds))


@dataclass(frozen=True)
class AfterAttempt:
    status: Status
    retry_at: datetime | None = None


def after_attempt(outcome: Outcome, attempts_made: int, now: datetime, policy: RetryPolicy) -> AfterAttempt:
    if outcome.delivered:
        return AfterAttempt(Status.SENT)
    if outcome.permanent or attempts_made >= policy.max_attempts:
        return AfterAttempt(Status.DEAD)
    return AfterAttempt(Status.RETRYING, now + policy.delay(attempts_made))


def is_newer(incoming: datetime, current: datetime | None) -> bool:
    """Read models keep the newest fact: an event older than what was
    already applied (a redelivery or a replay) changes nothing."""
    if current is None:
        return True
    if current.tzinfo is None:
        current = current.replace(tzinfo=UTC)
    return incoming > current


def resend_allowed(status: Status) -> str | None:
    """Why a message may not be resent by staff, or None."""
    if status == Status.SENT:
        return "the message was already sent; it is never sent twice for the same reason"
    if status == Status.CANCELLED:
        return "the message was cancelled with its appointment"
    return None

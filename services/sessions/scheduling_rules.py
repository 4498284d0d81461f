"""Scheduling rules: the clinic's hours and slot grid, how long a route
holds a chair, spacing between a patient's sessions, the induction course,
appointment states and late cancellation. Pure rules, re-exported by
``domain``."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import Enum
from zoneinfo import ZoneInfo

from common.errors import Conflict, field_error
from services.sessions.dosing import route


@dataclass(frozen=True)
class CourseRules:
    induction_sessions: int = 6
    min_hours_apart: int = 48
    # Six sessions over two to three weeks.
    max_course_days: int = 21


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class ClinicHours:
    time_zone: str = "America/New_York"
    opens: time = time(8, 0)
    closes: time = time(18, 0)
    days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri")
    slot_minutes: int = 15

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def is_open_day(self, day: date) -> bool:
        return WEEKDAYS[day.weekday()] in self.days

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        """Opening and closing of ``day`` (clinic local) as UTC instants."""
        return (datetime.combine(day, self.opens, self.zone).astimezone(timezone.utc),
                datetime.combine(day, self.closes, self.zone).astimezone(timezone.utc))

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()


def check_within_hours(starts_at: datetime, ends_at: datetime, hours: ClinicHours) -> None:
    local_start = starts_at.astimezone(hours.zone)
    day = local_start.date()
    if not hours.is_open_day(day):
        raise field_error("starts_at", f"the clinic is closed on {WEEKDAYS[day.weekday()]}")
    opens, closes = hours.day_bounds(day)
    if starts_at < opens or ends_at > closes:
        raise field_error("starts_at", f"the appointment must fit within clinic hours "
                          f"{hours.opens:%H:%M}–{hours.closes:%H:%M} ({hours.time_zone})")


def check_on_grid(starts_at: datetime, hours: ClinicHours) -> None:
    if starts_at.second or starts_at.microsecond or starts_at.minute % hours.slot_minutes:
        raise field_error("starts_at", f"must start on a {hours.slot_minutes}-minute boundary")


def slot_starts(starts_at: datetime, ends_at: datetime, slot_minutes: int) -> list[datetime]:
    """The grid slots an appointment occupies; one booking row per slot and
    resource is what makes overlaps collide in the database."""
    step = timedelta(minutes=slot_minutes)
    slots, moment = [], starts_at
    while moment < ends_at:
        slots.append(moment)
        moment += step
    return slots


def appointment_length(route_code: str, hours: ClinicHours, slot_minutes_by_route: dict | None = None) -> timedelta:
    minutes = int((slot_minutes_by_route or {}).get(route_code, route(route_code).slot_minutes))
    # Always whole grid slots, so the booking rows cover the whole visit.
    return timedelta(minutes=math.ceil(minutes / hours.slot_minutes) * hours.slot_minutes)


def check_spacing(starts_at: datetime, others: list[datetime], min_hours_apart: int) -> None:
    """No two treatment sessions of one patient closer than the minimum."""
    gap = timedelta(hours=min_hours_apart)
    for other in others:
        if abs(other - starts_at) < gap:
            raise Conflict(
                f"sessions must be at least {min_hours_apart} hours apart; "
                f"another session starts at {other.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC",
                {"conflicting_starts_at": other.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")},
            )


def propose_course(first_starts_at: datetime, sessions: int, hours: ClinicHours, rules: CourseRules,
                   length: timedelta) -> list[datetime]:
    """Start times for a whole induction course: the same local time of day,
    each session the minimum spacing after the previous, moved forward to
    the next open day when it lands on a closed one. Refused when it cannot
    fit the course window."""
    if sessions < 1:
        raise field_error("sessions", "must be at least 1")
    local = first_starts_at.astimezone(hours.zone)
    times, day = [], local.date()
    while len(times) < sessions:
        while not hours.is_open_day(day):
            day += timedelta(days=1)
        moment = datetime.combine(day, local.timetz().replace(tzinfo=None), hours.zone).astimezone(timezone.utc)
        if times and moment - times[-1] < timedelta(hours=rules.min_hours_apart):
            # DST change or a spacing that is not a whole number of days.
            day += timedelta(days=1)
            continue
        check_within_hours(moment, moment + length, hours)
        times.append(moment)
        day += timedelta(days=max(1, math.ceil(rules.min_hours_apart / 24)))
    span = times[-1] - times[0]
    if span > timedelta(days=rules.max_course_days):
        raise field_error("first_starts_at", f"the course would take {span.days} days, more than "
                          f"{rules.max_course_days}; choose a start earlier in the week or fewer sessions")
    return times


def next_maintenance_due(last_session_day: date, interval_days: int) -> date:
    """After induction, the plan's cadence counts from the last session given."""
    return last_session_day + timedelta(days=interval_days)


LATE_CANCELLATION_HOURS = 24


def is_late_cancellation(starts_at: datetime, cancelled_at: datetime, hours: int = LATE_CANCELLATION_HOURS) -> bool:
    return starts_at - cancelled_at < timedelta(hours=hours)


class AppointmentStatus(str, Enum):
    SCHEDULED = "scheduled"
    CHECKED_IN = "checked_in"
    IN_SESSION = "in_session"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"
    ABORTED = "aborted"


# The statuses in which an appointment still holds its chair and clinician.
HOLDING = {AppointmentStatus.SCHEDULED, AppointmentStatus.CHECKED_IN, AppointmentStatus.IN_SESSION,
           AppointmentStatus.COMPLETED}


APPOINTMENT_MOVES = {
    # action: (statuses it is allowed from, how the refusal reads)
    "reschedule": ({AppointmentStatus.SCHEDULED}, "rescheduled"),
    "cancel": ({AppointmentStatus.SCHEDULED}, "cancelled"),
    "no_show": ({AppointmentStatus.SCHEDULED}, "marked a no-show"),
    "check_in": ({AppointmentStatus.SCHEDULED}, "checked in"),
}


def check_appointment_move(status: AppointmentStatus, action: str) -> None:
    allowed, verb = APPOINTMENT_MOVES[action]
    if status not in allowed:
        raise Conflict(f"an appointment that is {status.value.replace('_', ' ')} cannot be {verb}")


def free_starts(day_open: datetime, day_close: datetime, length: timedelta, slot_minutes: int,
                busy: set[datetime], not_before: datetime | None = None) -> list[datetime]:
    """Grid starts on a day where a visit of ``length`` fits before closing
    and touches none of the ``busy`` slots of one resource."""
    step = timedelta(minutes=slot_minutes)
    starts, moment = [], day_open
    while moment + length <= day_close:
        if (not_before is None or moment >= not_before) and not any(
                slot in busy for slot in slot_starts(moment, moment + length, slot_minutes)):
            starts.append(moment)
        moment += step
    return starts

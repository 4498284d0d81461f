"""When a treatment plan's self-report schedule says a form is due. Pure:
the timer in capabilities/self_report_schedule.py gathers the facts and
these rules decide, so every rule is tested without a database.

A plan's schedule names, for each occasion, the forms to send:
- ``before_induction``: the day before (or, if booked later, the morning
  of) each induction appointment: PHQ-9 and GAD-7 by default;
- ``weekly_in_maintenance``: once a week after the induction course is
  complete: PHQ-9;
- ``after_session``: the day after each completed session: the short
  post-session check-in.
An empty list turns that occasion off; a plan with no schedule sends nothing.

Each due form has a ``due_id`` that names its occasion, so however often
the timer looks (and however many replicas look at once) one occasion
gives one link."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

QUESTIONNAIRES = ("phq9", "gad7", "cssrs", "check_in")
OCCASIONS = ("before_induction", "weekly_in_maintenance", "after_session")
DEFAULT_SCHEDULE = {"before_induction": ["phq9", "gad7"], "weekly_in_maintenance": ["phq9"],
                    "after_session": ["check_in"]}
OFF = {occasion: [] for occasion in OCCASIONS}


@dataclass(frozen=True)
class ScheduleRules:
    """Clinic-configurable (``SESSIONS.self_report``)."""

    # The link goes out this long before an induction appointment starts.
    before_induction_hours: int = 24
    # The day after a session, from this clinic-local time.
    after_session_at: time = time(10, 0)
    # A check-in not sent within this long of its time (the timer was down,
    # the schedule was turned on late) is no longer worth sending.
    after_session_window_hours: int = 48
    maintenance_every_days: int = 7

    @classmethod
    def from_config(cls, section: dict | None) -> "ScheduleRules":
        section = dict(section or {})
        values = {}
        for name in ("before_induction_hours", "after_session_window_hours", "maintenance_every_days"):
            if name in section:
                values[name] = int(section[name])
        if "after_session_at" in section:
            at = section["after_session_at"]
            if isinstance(at, int):  # YAML reads 10:00 as sexagesimal minutes
                at = f"{at // 60}:{at % 60}"
            hour, minute = str(at).split(":")
            values["after_session_at"] = time(int(hour), int(minute))
        return cls(**values)


@dataclass(frozen=True)
class Due:
    due_id: str
    questionnaire: str
    due_at: datetime


def schedule_or_default(given: dict | None) -> dict:
    """A new plan's schedule: the default, with what staff gave replacing
    each occasion they named."""
    return {**DEFAULT_SCHEDULE, **{k: list(v) for k, v in (given or {}).items()}}


def before_induction(appointment_id: str, starts_at: datetime, forms: list[str], now: datetime,
                     rules: ScheduleRules = ScheduleRules()) -> list[Due]:
    """Due from ``before_induction_hours`` before the start until the start."""
    opens = starts_at - timedelta(hours=rules.before_induction_hours)
    if not opens <= now < starts_at:
        return []
    return [Due(f"before:{appointment_id}:{form}", form, opens) for form in forms]


def after_session_due_at(discharged_at: datetime, zone: ZoneInfo, rules: ScheduleRules = ScheduleRules()) -> datetime:
    next_day = discharged_at.astimezone(zone).date() + timedelta(days=1)
    return datetime.combine(next_day, rules.after_session_at, tzinfo=zone)


def after_session(session_id: str, discharged_at: datetime, forms: list[str], now: datetime, zone: ZoneInfo,
                  rules: ScheduleRules = ScheduleRules()) -> list[Due]:
    """Due the day after the session (clinic-local), for a window."""
    due_at = after_session_due_at(discharged_at, zone, rules)
    if not due_at <= now < due_at + timedelta(hours=rules.after_session_window_hours):
        return []
    return [Due(f"after:{session_id}:{form}", form, due_at) for form in forms]


def weekly_in_maintenance(plan_id: str, maintenance_since: datetime, forms: list[str], now: datetime,
                          rules: ScheduleRules = ScheduleRules()) -> list[Due]:
    """Due every ``maintenance_every_days`` counted from the course's end;
    only the current week's form, never a backlog of missed ones."""
    every = timedelta(days=rules.maintenance_every_days)
    weeks = (now - maintenance_since) // every
    if weeks < 1:
        return []
    return [Due(f"weekly:{plan_id}:{weeks}:{form}", form, maintenance_since + weeks * every) for form in forms]

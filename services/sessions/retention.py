"""Course retention as plain rules: when the front desk is asked to call a
patient (no next induction booked, a no-show, a course stopped after its
first session, a pre-visit reply that did not confirm), when such a task
closes, and the clinic's monthly course report. Nothing here touches the
database or the broker."""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import Enum

from common.errors import Conflict, field_error
# The module, not its names: domain reads RetentionRules from here.
from services.sessions import domain

REBOOK_HOURS = 72
# Completed sessions older than this when the rule first sees them (say,
# the history present when retention tasks were switched on) open no task:
# the front desk is asked about patients it can still help, not last year's.
LOOKBACK_DAYS = 30
# The end-of-course PHQ-9 is often taken at a visit shortly after the last
# session; scores later than this belong to maintenance, not the course.
COURSE_END_SCORE_DAYS = 14
REPORT_MOST_MONTHS = 36


class TaskKind(str, Enum):
    NO_NEXT_BOOKING = "no_next_booking"
    NO_SHOW = "no_show"
    STOPPED_AFTER_FIRST = "stopped_after_first"
    PREVISIT_UNCONFIRMED = "previsit_unconfirmed"


class TaskState(str, Enum):
    OPEN = "open"
    CLOSED = "closed"


class CloseOutcome(str, Enum):
    BOOKED = "booked"
    DECLINED = "declined"
    # The patient's own YES to the pre-visit message: nothing left to call
    # about. Set by that reply, never chosen by staff.
    CONFIRMED = "confirmed"


# The kinds a booking answers: the patient is back on the schedule.
CLOSED_BY_BOOKING = (TaskKind.NO_NEXT_BOOKING, TaskKind.NO_SHOW, TaskKind.STOPPED_AFTER_FIRST)


@dataclass(frozen=True)
class RetentionRules:
    rebook_hours: int = REBOOK_HOURS
    lookback_days: int = LOOKBACK_DAYS

    @property
    def rebook_window(self) -> timedelta:
        return timedelta(hours=self.rebook_hours)


def open_key(patient_id: str, kind: TaskKind, plan_id: str | None) -> str:
    """What makes a task unique while it is open: one per patient, kind and
    plan, however often the rule that opens it fires."""
    return f"{patient_id}:{TaskKind(kind).value}:{plan_id or '-'}"


def rebooking_check_due(discharged_at: datetime, now: datetime, rules: RetentionRules) -> bool:
    """A completed induction session is looked at once its rebooking window
    has passed, and only if it is recent enough to act on."""
    waited = now - discharged_at
    return rules.rebook_window <= waited <= rules.rebook_window + timedelta(days=rules.lookback_days)


def needs_rebooking_task(*, plan_active: bool, course_completed: bool, later_booking: bool) -> bool:
    """After a completed induction session the window has passed: a task
    unless the course is done, the plan was stopped (which has its own
    rule) or a later appointment of the plan is on the schedule."""
    return plan_active and not course_completed and not later_booking


def stopped_after_first(*, old_status: str, new_status: str, completed_inductions: int,
                        course_completed: bool) -> bool:
    """A plan closed with exactly one induction session given."""
    return (old_status == "active" and new_status != "active" and completed_inductions == 1
            and not course_completed)


def closes_on_booking(kind: TaskKind, task_plan_id: str | None, booked_plan_id: str) -> bool:
    """A booking in the plan answers its rebooking and no-show tasks; a
    course stopped after one session is answered by a booking in any plan
    (a new plan is how a stopped course restarts)."""
    kind = TaskKind(kind)
    if kind not in CLOSED_BY_BOOKING:
        return False
    return kind is TaskKind.STOPPED_AFTER_FIRST or task_plan_id == booked_plan_id


def check_close(state: TaskState, outcome: CloseOutcome, reason: str | None) -> None:
    if TaskState(state) is TaskState.CLOSED:
        raise Conflict("the task is already closed")
    if CloseOutcome(outcome) is CloseOutcome.DECLINED and not (reason or "").strip():
        raise field_error("reason", "say why the patient declined")


def previsit_confirmed(answer: str) -> bool:
    """``confirmed`` records the checklist confirmation; ``declined`` and
    ``unrecognised`` need a person to call."""
    return answer == "confirmed"


def standing_previsit_answer(replies) -> str | None:
    """The patient's answer for an appointment as it stands: the reply
    received last, whatever order the replies arrived in (the reply id
    breaks a tie). ``replies`` are (received_at, reply_id, answer)."""
    latest = max(replies, key=lambda reply: (reply[0], reply[1]), default=None)
    return latest[2] if latest else None


# --------------------------------------------------------------------------
# The monthly course report
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class CourseFacts:
    """One treatment plan's induction course, in clinic-local days.
    ``scores`` are the PHQ-9 series as (day, total) in recorded order."""

    started_on: date | None
    completed_on: date | None
    stopped_after_first_on: date | None
    intake_baseline: int | None
    scores: tuple[tuple[date, int], ...] = ()


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def parse_month(value, name: str) -> date:
    """``YYYY-MM`` as the first day of that month."""
    text = str(value or "")
    try:
        year, month = text.split("-")
        if len(year) != 4 or len(month) != 2:
            raise ValueError
        return date(int(year), int(month), 1)
    except ValueError:
        raise field_error(name, "must be a month such as 2026-11") from None


def months_before(first_of_month: date, count: int) -> date:
    year, month = divmod(first_of_month.year * 12 + first_of_month.month - 1 - count, 12)
    return date(year, month + 1, 1)


def months_between(first: date, last: date) -> list[str]:
    if last < first:
        raise field_error("to", "must not be before from")
    months, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    if len(months) > REPORT_MOST_MONTHS:
        raise field_error("from", f"at most {REPORT_MOST_MONTHS} months at once")
    return months


def median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def outcome_at_course_end(course: CourseFacts) -> domain.Outcome:
    """Response and remission as the course summary counts them (the
    intake score as baseline, else the first score, which is then no
    outcome), from the scores taken up to shortly after the last session."""
    assert course.completed_on is not None
    until = course.completed_on + timedelta(days=COURSE_END_SCORE_DAYS)
    scores = [total for day, total in course.scores if day <= until]
    baseline = course.intake_baseline if course.intake_baseline is not None else (scores[0] if scores else None)
    later = scores if course.intake_baseline is not None else scores[1:]
    return domain.course_outcome(baseline, later[-1] if later else None)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def monthly_report(courses: list[CourseFacts], months: list[str]) -> list[dict]:
    """Per month: courses started (first induction session given),
    completed, stopped after one session, the median days from first to
    last session of those completed, and their response and remission
    rates at course end among those with the scores to tell."""
    rows = {m: {"started": 0, "completed": 0, "stopped_after_first": 0, "days": [],
                "with_change": 0, "responders": 0, "with_final": 0, "remitters": 0} for m in months}
    for course in courses:
        if course.started_on and month_of(course.started_on) in rows:
            rows[month_of(course.started_on)]["started"] += 1
        if course.stopped_after_first_on and month_of(course.stopped_after_first_on) in rows:
            rows[month_of(course.stopped_after_first_on)]["stopped_after_first"] += 1
        if course.completed_on and month_of(course.completed_on) in rows:
            row = rows[month_of(course.completed_on)]
            row["completed"] += 1
            if course.started_on:
                row["days"].append((course.completed_on - course.started_on).days)
            outcome = outcome_at_course_end(course)
            if outcome.baseline_phq9 is not None and outcome.final_phq9 is not None:
                row["with_change"] += 1
                row["responders"] += outcome.response
            if outcome.final_phq9 is not None:
                row["with_final"] += 1
                row["remitters"] += outcome.remission
    return [{"month": m, "courses_started": r["started"], "courses_completed": r["completed"],
             "stopped_after_first": r["stopped_after_first"], "median_days_to_complete": median(r["days"]),
             "with_phq9_change": r["with_change"], "response_rate": _rate(r["responders"], r["with_change"]),
             "with_final_phq9": r["with_final"], "remission_rate": _rate(r["remitters"], r["with_final"])}
            for m, r in rows.items()]

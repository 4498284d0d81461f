"""Sessions rules as plain code: routes and doses, the scheduling grid and
clinic hours, the induction course, vitals thresholds, discharge and REMS
monitoring, signing, and course outcomes. Nothing here touches a database or
the broker, so every rule is tested directly. Every number below is a
default a clinic may override in the ``SESSIONS`` config section.

The rules live by topic in ``dosing``, ``scheduling_rules`` and
``monitoring`` beside this module; this one holds the session record's
states and signing, course outcomes and the configuration, and names every
rule, so callers use ``domain.<rule>`` whichever module holds it."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import time, timedelta
from enum import Enum

from common.errors import Conflict
from services.sessions.dosing import (  # noqa: F401 (re-exported)
    ESKETAMINE, ROUTES, Route, check_plan_dosing, compute_dose_mg, round_dose, route, weight_based_mg,
)
from services.sessions.monitoring import (  # noqa: F401 (re-exported)
    CHECK_IN_EARLY_MINUTES, CHECKLIST_ITEMS, MONITORING_FORM_DAYS, REMS_POST_DOSE_WINDOW, REMS_PRE_DISCHARGE_WINDOW,
    VITALS_EVERY_MINUTES, DischargeRules, VitalsThresholds, check_check_in_time, check_in_window,
    discharge_problems, minutes_between, missing_checklist_items, monitoring_form_due, monitoring_gaps,
    rems_monitoring_problems, vitals_alerts,
)
# The module, not its names: retention reads course_outcome from here.
from services.sessions import retention as retention_rules
from services.sessions.self_report_schedule import ScheduleRules
from services.sessions.scheduling_rules import (  # noqa: F401 (re-exported)
    APPOINTMENT_MOVES, HOLDING, LATE_CANCELLATION_HOURS, WEEKDAYS, AppointmentStatus, ClinicHours, CourseRules,
    appointment_length, check_appointment_move, check_on_grid, check_spacing, check_within_hours, free_starts,
    is_late_cancellation, next_maintenance_due, propose_course, slot_starts,
)


# --------------------------------------------------------------------------
# Session record state and signing
# --------------------------------------------------------------------------


class SessionStatus(str, Enum):
    CHECKED_IN = "checked_in"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    ABORTED = "aborted"


SESSION_MOVES = {
    "start": ({SessionStatus.CHECKED_IN}, "started"),
    "update_checklist": ({SessionStatus.CHECKED_IN}, "changed at check-in"),
    "record": ({SessionStatus.CHECKED_IN, SessionStatus.IN_PROGRESS}, "recorded on"),
    "complete": ({SessionStatus.IN_PROGRESS}, "completed"),
    "abort": ({SessionStatus.CHECKED_IN, SessionStatus.IN_PROGRESS}, "aborted"),
}


def check_session_move(status: SessionStatus, action: str, *, signed: bool = False) -> None:
    if signed:
        raise Conflict("the session record is signed and locked; add an addendum instead")
    allowed, verb = SESSION_MOVES[action]
    if status not in allowed:
        raise Conflict(f"a session that is {status.value.replace('_', ' ')} cannot be {verb}")


SIGN_REQUIRED_COMPLETED = ("fasting_confirmed", "escort_confirmed", "weight_kg", "baseline_vitals",
                           "pre_session_score", "drug", "route", "dose_mg", "lot_number", "started_at",
                           "ended_at", "vitals_during_session", "dissociation_score", "discharged_at")
SIGN_REQUIRED_ABORTED = ("aborted_at", "abort_reason_code")


def missing_for_signature(record: dict) -> list[str]:
    """A clinician signs only a complete record: every required field of a
    completed session (or the abort facts of an aborted one)."""
    if record.get("status") == SessionStatus.ABORTED.value:
        required = SIGN_REQUIRED_ABORTED
    elif record.get("status") == SessionStatus.COMPLETED.value:
        required = SIGN_REQUIRED_COMPLETED
        if record.get("route") == ESKETAMINE:
            required = required + ("sedation_checked",)
    else:
        raise Conflict("only a completed or aborted session can be signed")
    return [name for name in required if _absent(record.get(name))]


def _absent(value) -> bool:
    # A score of 0 is present; only nothing, an unticked box or blank text is not.
    return value is None or value is False or value == "" or value == [] or value == {}


# --------------------------------------------------------------------------
# Outcomes
# --------------------------------------------------------------------------

RESPONSE_DROP_PERCENT = 50
REMISSION_BELOW = 5


@dataclass(frozen=True)
class Outcome:
    baseline_phq9: int | None
    final_phq9: int | None
    change_percent: float | None
    response: bool
    remission: bool


def course_outcome(baseline: int | None, final: int | None) -> Outcome:
    """Response: PHQ-9 down by 50 % or more from baseline. Remission: a
    final PHQ-9 below 5. Unknown without both scores."""
    remission = final is not None and final < REMISSION_BELOW
    if baseline is None or final is None:
        return Outcome(baseline, final, None, False, remission)
    if baseline == 0:
        # Nothing to drop from: no response, and no percentage to report
        # beyond "unchanged" or "worse".
        return Outcome(baseline, final, 0.0 if final == 0 else None, False, remission)
    change = round((final - baseline) / baseline * 100, 1)
    return Outcome(baseline, final, change, -change >= RESPONSE_DROP_PERCENT, remission)


# --------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Rules:
    hours: ClinicHours = field(default_factory=ClinicHours)
    course: CourseRules = field(default_factory=CourseRules)
    vitals: VitalsThresholds = field(default_factory=VitalsThresholds)
    discharge: DischargeRules = field(default_factory=DischargeRules)
    slot_minutes_by_route: dict = field(default_factory=dict)
    late_cancellation_hours: int = LATE_CANCELLATION_HOURS
    monitoring_form_days: int = MONITORING_FORM_DAYS
    check_in_early: timedelta = timedelta(minutes=CHECK_IN_EARLY_MINUTES)
    retention: retention_rules.RetentionRules = field(default_factory=lambda: retention_rules.RetentionRules())
    self_report: ScheduleRules = field(default_factory=ScheduleRules)

    @classmethod
    def from_config(cls, section: dict | None) -> "Rules":
        """Read the optional ``SESSIONS`` config section (see docs/rpc/sessions.md)."""
        section = dict(section or {})
        hours = ClinicHours()
        if "time_zone" in section:
            hours = replace(hours, time_zone=str(section["time_zone"]))
        if "opens" in section:
            hours = replace(hours, opens=_clock(section["opens"]))
        if "closes" in section:
            hours = replace(hours, closes=_clock(section["closes"]))
        if "days" in section:
            hours = replace(hours, days=tuple(str(d).lower()[:3] for d in section["days"]))
        if "slot_minutes" in section:
            hours = replace(hours, slot_minutes=int(section["slot_minutes"]))
        course = CourseRules(**{k: int(section[k]) for k in ("induction_sessions", "min_hours_apart",
                                                              "max_course_days") if k in section})
        vitals = VitalsThresholds(**{k: int(v) for k, v in (section.get("vitals_thresholds") or {}).items()})
        discharge = DischargeRules(**{k: int(v) for k, v in (section.get("discharge") or {}).items()})
        return cls(hours=hours, course=course, vitals=vitals, discharge=discharge,
                   slot_minutes_by_route=dict(section.get("route_minutes") or {}),
                   late_cancellation_hours=int(section.get("late_cancellation_hours", LATE_CANCELLATION_HOURS)),
                   monitoring_form_days=int(section.get("monitoring_form_days", MONITORING_FORM_DAYS)),
                   check_in_early=timedelta(minutes=int(section.get("check_in_early_minutes",
                                                                    CHECK_IN_EARLY_MINUTES))),
                   retention=retention_rules.RetentionRules(**{
                       key: int(section[f"retention_{key}"]) for key in ("rebook_hours", "lookback_days")
                       if f"retention_{key}" in section}),
                   self_report=ScheduleRules.from_config(section.get("self_report")))


def _clock(value) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int):  # YAML reads 08:00 as sexagesimal minutes
        return time(value // 60, value % 60)
    hour, minute = str(value).split(":")
    return time(int(hour), int(minute))

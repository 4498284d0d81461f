"""Sessions rules as plain code: routes and doses, the scheduling grid and
clinic hours, the induction course, vitals thresholds, discharge and REMS
monitoring, signing, and course outcomes. Nothing here touches a database or
the broker, so every rule is tested directly. Every number below is a
default a clinic may override in the ``SESSIONS`` config section."""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_DOWN, Decimal
from enum import Enum
from zoneinfo import ZoneInfo

from common.errors import Conflict, field_error

# --------------------------------------------------------------------------
# Routes, drugs and doses
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    code: str
    drug: str
    # How long the chair, the clinician and the patient are held: the
    # treatment plus the observation before discharge.
    slot_minutes: int
    default_mg_per_kg: float | None
    default_max_dose_mg: float
    # Esketamine is dosed by device (56 or 84 mg), not by weight.
    fixed_doses_mg: tuple[float, ...] = ()
    min_observation_minutes: int = 0


ROUTES = {
    route.code: route
    for route in (
        # 0.5 mg/kg over 40 minutes, then recovery: about an hour.
        Route("iv_infusion", "ketamine", 60, 0.5, 75.0),
        Route("im_injection", "ketamine", 60, 0.5, 75.0),
        # Spravato REMS: at least two hours of observation after dosing.
        Route("intranasal_esketamine", "esketamine", 120, None, 84.0, fixed_doses_mg=(56.0, 84.0),
              min_observation_minutes=120),
        Route("oral_sublingual", "ketamine", 90, 1.0, 300.0),
    )
}
ESKETAMINE = "intranasal_esketamine"


def route(code: str) -> Route:
    try:
        return ROUTES[code]
    except KeyError:
        raise field_error("route", f"must be one of {', '.join(ROUTES)}") from None


def compute_dose_mg(*, weight_kg: float | None, mg_per_kg: float | None, fixed_dose_mg: float | None,
                    max_dose_mg: float, requested_mg: float | None = None,
                    device_doses_mg: tuple[float, ...] = (), max_mg_per_kg: float | None = None) -> float:
    """The dose to give, in mg, rounded down to 0.1 mg: what is charted may
    be less than weight × mg/kg by a rounding step, never more. Weight-based
    plans use the weight recorded at check-in; a clinician may give less
    than computed (titration) but never more than the plan's maximum, in mg
    or (``max_mg_per_kg``) per kg of that weight."""
    if fixed_dose_mg is not None:
        dose = float(fixed_dose_mg)
    else:
        if mg_per_kg is None:
            raise field_error("mg_per_kg", "the plan has neither a mg/kg protocol nor a fixed dose")
        if weight_kg is None or weight_kg <= 0:
            raise field_error("weight_kg", "a weight recorded at check-in is needed to compute the dose")
        dose = weight_based_mg(weight_kg, mg_per_kg)
    if requested_mg is not None:
        if device_doses_mg and requested_mg not in device_doses_mg:
            # Esketamine comes in 28 mg devices: 56 or 84 mg, nothing between.
            raise field_error("dose_mg", "must be one of " + ", ".join(f"{d:g}" for d in device_doses_mg) + " mg")
        if requested_mg <= 0:
            raise field_error("dose_mg", "must be above 0")
        if round_dose(requested_mg) > dose:
            raise field_error("dose_mg", f"{requested_mg} mg is above the {dose} mg the plan gives for this weight")
        dose = round_dose(requested_mg)
    if dose > round_dose(max_dose_mg):
        raise field_error("dose_mg", f"{dose} mg is above the plan's maximum of {round_dose(max_dose_mg)} mg")
    if max_mg_per_kg is not None:
        if weight_kg is None or weight_kg <= 0:
            raise field_error("weight_kg", "a weight recorded at check-in is needed to check the plan's mg/kg maximum")
        ceiling = weight_based_mg(weight_kg, max_mg_per_kg)
        if dose > ceiling:
            raise field_error("dose_mg", f"{dose} mg is above the plan's maximum of {max_mg_per_kg:g} mg/kg "
                              f"({ceiling} mg at {weight_kg:g} kg)")
    return dose


def weight_based_mg(weight_kg: float, mg_per_kg: float) -> float:
    """Weight × mg/kg, worked out in decimal (0.3 × 70 is 21, not
    20.999…) and rounded down to 0.1 mg."""
    return _down_to_tenth(Decimal(str(weight_kg)) * Decimal(str(mg_per_kg)))


def round_dose(mg: float) -> float:
    # Down, never up: 62.5 kg × 0.5 mg/kg = 31.25 mg is charted as 31.2 mg,
    # so the charted dose is never more than the prescription.
    return _down_to_tenth(Decimal(str(mg)))


def _down_to_tenth(mg: Decimal) -> float:
    return float(mg.quantize(Decimal("0.1"), rounding=ROUND_DOWN))


# --------------------------------------------------------------------------
# Plans
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class CourseRules:
    induction_sessions: int = 6
    min_hours_apart: int = 48
    # Six sessions over two to three weeks.
    max_course_days: int = 21


def check_plan_dosing(route_code: str, mg_per_kg: float | None, fixed_dose_mg: float | None,
                      max_dose_mg: float, max_mg_per_kg: float | None = None) -> None:
    chosen = route(route_code)
    if chosen.fixed_doses_mg:
        if fixed_dose_mg not in chosen.fixed_doses_mg:
            raise field_error("fixed_dose_mg", "esketamine is given as "
                              + " or ".join(f"{d:g}" for d in chosen.fixed_doses_mg) + " mg")
        if mg_per_kg is not None:
            raise field_error("mg_per_kg", "esketamine is not dosed by weight")
    else:
        if mg_per_kg is None:
            raise field_error("mg_per_kg", f"{route_code} needs a dose protocol in mg/kg")
        if fixed_dose_mg is not None:
            raise field_error("fixed_dose_mg", f"{route_code} is dosed by weight")
    if fixed_dose_mg is not None and fixed_dose_mg > max_dose_mg:
        raise field_error("max_dose_mg", "must be at least the fixed dose")
    if max_mg_per_kg is not None:
        if mg_per_kg is None:
            raise field_error("max_mg_per_kg", f"{route_code} is not dosed by weight")
        if max_mg_per_kg < mg_per_kg:
            raise field_error("max_mg_per_kg", f"must be at least the plan's {mg_per_kg:g} mg/kg")


# --------------------------------------------------------------------------
# Scheduling: the slot grid, clinic hours, spacing, the induction course
# --------------------------------------------------------------------------

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


# --------------------------------------------------------------------------
# Check-in, vitals and discharge
# --------------------------------------------------------------------------

CHECK_IN_EARLY_MINUTES = 60


def check_in_window(starts_at: datetime, booked_at: datetime, hours: ClinicHours,
                    early: timedelta = timedelta(minutes=CHECK_IN_EARLY_MINUTES)) -> tuple[datetime, datetime]:
    """When an appointment may be checked in: from ``early`` before its
    start (but never before it was booked, nor before its clinic day
    began) until the end of that clinic day, so a late arrival is still
    seen. Anything else would date a session, and its charges, to a day
    the patient was not booked for."""
    day = hours.local_date(starts_at)
    day_starts = datetime.combine(day, time(0), hours.zone).astimezone(timezone.utc)
    day_ends = datetime.combine(day + timedelta(days=1), time(0), hours.zone).astimezone(timezone.utc)
    return max(starts_at - early, booked_at, day_starts), day_ends


def check_check_in_time(checked_in_at: datetime, starts_at: datetime, booked_at: datetime, hours: ClinicHours,
                        early: timedelta = timedelta(minutes=CHECK_IN_EARLY_MINUTES)) -> None:
    opens, closes = check_in_window(starts_at, booked_at, hours, early)
    if opens <= checked_in_at < closes:
        return
    local = starts_at.astimezone(hours.zone)
    appointment = f"the appointment is at {local:%H:%M} on {local:%a %-d %b %Y} ({hours.time_zone})"
    details = {"starts_at": _z(starts_at), "check_in_opens_at": _z(opens), "check_in_closes_at": _z(closes)}
    if checked_in_at < booked_at:
        raise Conflict(f"{appointment} and was booked at {booked_at.astimezone(hours.zone):%H:%M on %a %-d %b}; "
                       "a check-in cannot be earlier than its booking", details)
    if checked_in_at < opens:
        raise Conflict(f"{appointment}; check-in opens at {opens.astimezone(hours.zone):%H:%M on %a %-d %b}", details)
    raise Conflict(f"{appointment}; check-in closed at the end of that day "
                   "(mark it a no-show, or book another appointment)", details)


def _z(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


CHECKLIST_ITEMS = ("fasting_confirmed", "escort_confirmed", "weight_kg", "baseline_vitals", "pre_session_score")


def missing_checklist_items(checklist: dict) -> list[str]:
    """What still stops the session from starting: fasting (6 h food, 2 h
    clear fluids), an escort or ride home, weight, baseline vitals, and a
    pre-session PHQ-9 or mood score."""
    missing = []
    if checklist.get("fasting_confirmed") is not True:
        missing.append("fasting_confirmed")
    if checklist.get("escort_confirmed") is not True:
        missing.append("escort_confirmed")
    if not checklist.get("weight_kg"):
        missing.append("weight_kg")
    if not checklist.get("baseline_vitals"):
        missing.append("baseline_vitals")
    if checklist.get("pre_phq9") is None and checklist.get("mood_score") is None:
        missing.append("pre_session_score")
    return missing


@dataclass(frozen=True)
class VitalsThresholds:
    systolic_high: int = 180       # alert at or above
    diastolic_high: int = 110      # alert at or above
    heart_rate_high: int = 130     # alert above
    heart_rate_low: int = 50       # alert below
    spo2_low: int = 92             # alert below
    respiratory_rate_low: int = 10  # alert below


def vitals_alerts(reading: dict, limits: VitalsThresholds) -> list[dict]:
    """Each measure outside the thresholds, as ``{code, measure, value,
    threshold}``; an absent measure raises nothing."""
    checks = (
        ("systolic_high", "systolic", lambda v: v >= limits.systolic_high, limits.systolic_high),
        ("diastolic_high", "diastolic", lambda v: v >= limits.diastolic_high, limits.diastolic_high),
        ("heart_rate_high", "heart_rate", lambda v: v > limits.heart_rate_high, limits.heart_rate_high),
        ("heart_rate_low", "heart_rate", lambda v: v < limits.heart_rate_low, limits.heart_rate_low),
        ("spo2_low", "spo2", lambda v: v < limits.spo2_low, limits.spo2_low),
        ("respiratory_rate_low", "respiratory_rate", lambda v: v < limits.respiratory_rate_low,
         limits.respiratory_rate_low),
    )
    return [{"code": code, "measure": measure, "value": reading[measure], "threshold": threshold}
            for code, measure, breached, threshold in checks
            if reading.get(measure) is not None and breached(reading[measure])]


@dataclass(frozen=True)
class DischargeRules:
    # "Back near baseline": within this many mmHg / beats of the baseline.
    systolic_tolerance: int = 20
    diastolic_tolerance: int = 15
    heart_rate_tolerance: int = 20
    spo2_min: int = 94


def discharge_problems(baseline: dict, latest: dict | None, *, alert_and_oriented: bool, escort_present: bool,
                       rules: DischargeRules, limits: VitalsThresholds) -> list[str]:
    """Why the patient may not leave yet; empty when discharge is safe."""
    problems = []
    if latest is None:
        problems.append("no_vitals_since_dosing")
    else:
        if vitals_alerts(latest, limits):
            problems.append("vitals_outside_alert_thresholds")
        for measure, tolerance in (("systolic", rules.systolic_tolerance), ("diastolic", rules.diastolic_tolerance),
                                   ("heart_rate", rules.heart_rate_tolerance)):
            if (latest.get(measure) is not None and baseline.get(measure) is not None
                    and latest[measure] - baseline[measure] > tolerance):
                problems.append(f"{measure}_not_near_baseline")
        if latest.get("spo2") is not None and latest["spo2"] < rules.spo2_min:
            problems.append("spo2_not_recovered")
    if not alert_and_oriented:
        problems.append("not_alert_and_oriented")
    if not escort_present:
        problems.append("escort_not_present")
    return problems


# Spravato REMS: blood pressure before dosing, about 40 minutes after, and
# before discharge; at least two hours of observation.
REMS_POST_DOSE_WINDOW = (timedelta(minutes=30), timedelta(minutes=60))
REMS_PRE_DISCHARGE_WINDOW = timedelta(minutes=30)


def rems_monitoring_problems(started_at: datetime, discharge_at: datetime, bp_times: list[datetime],
                             observation_minutes: int = 120) -> list[str]:
    problems = []
    if discharge_at - started_at < timedelta(minutes=observation_minutes):
        problems.append("observation_shorter_than_required")
    if not any(t <= started_at for t in bp_times):
        problems.append("blood_pressure_before_dosing_missing")
    low, high = REMS_POST_DOSE_WINDOW
    if not any(started_at + low <= t <= started_at + high for t in bp_times):
        problems.append("blood_pressure_40_minutes_after_dosing_missing")
    if not any(discharge_at - REMS_PRE_DISCHARGE_WINDOW <= t <= discharge_at for t in bp_times):
        problems.append("blood_pressure_before_discharge_missing")
    return problems


VITALS_EVERY_MINUTES = 15


def monitoring_gaps(started_at: datetime, ended_at: datetime | None, reading_times: list[datetime],
                    every_minutes: int = VITALS_EVERY_MINUTES) -> list[tuple[datetime, datetime]]:
    """Stretches of the session longer than the monitoring interval with no
    vitals reading: shown on the record for the clinician, not a hard stop."""
    marks = [started_at] + sorted(t for t in reading_times if t > started_at
                                  and (ended_at is None or t < ended_at))
    if ended_at is not None:
        marks.append(ended_at)
    limit = timedelta(minutes=every_minutes)
    return [(a, b) for a, b in zip(marks, marks[1:]) if b - a > limit]


MONITORING_FORM_DAYS = 7


def monitoring_form_due(session_day: date, days: int = MONITORING_FORM_DAYS) -> date:
    return session_day + timedelta(days=days)


def minutes_between(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return max(0, round((end - start).total_seconds() / 60))


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
                                                                    CHECK_IN_EARLY_MINUTES))))


def _clock(value) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int):  # YAML reads 08:00 as sexagesimal minutes
        return time(value // 60, value % 60)
    hour, minute = str(value).split(":")
    return time(int(hour), int(minute))

"""Check-in and the monitored session: the check-in window and checklist,
vitals thresholds and alerts, discharge criteria, the Spravato REMS
monitoring points and Patient Monitoring Form, gaps in monitoring. Pure
rules, re-exported by ``domain``."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from common.errors import Conflict
from services.sessions.scheduling_rules import ClinicHours


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

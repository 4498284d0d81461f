from datetime import date, datetime, timedelta, timezone

import pytest

from common.errors import Conflict
from services.sessions.domain import (
    SessionStatus, check_session_move, course_outcome, minutes_between, missing_checklist_items,
    missing_for_signature, monitoring_form_due, monitoring_gaps, rems_monitoring_problems,
)

COMPLETE_CHECKLIST = {"fasting_confirmed": True, "escort_confirmed": True, "weight_kg": 70,
                      "baseline_vitals": {"systolic": 120}, "pre_phq9": 14, "mood_score": None}


@pytest.mark.parametrize("change, missing", [
    ({}, []),
    ({"fasting_confirmed": False}, ["fasting_confirmed"]),
    ({"escort_confirmed": None}, ["escort_confirmed"]),
    ({"weight_kg": None}, ["weight_kg"]),
    ({"baseline_vitals": None}, ["baseline_vitals"]),
    ({"pre_phq9": None}, ["pre_session_score"]),
    ({"pre_phq9": None, "mood_score": 4}, []),   # a short mood score will do
    ({"pre_phq9": 0}, []),                       # zero is a score
])
def test_check_in_checklist(change, missing):
    assert missing_checklist_items({**COMPLETE_CHECKLIST, **change}) == missing


def test_an_empty_checklist_misses_everything():
    assert missing_checklist_items({}) == ["fasting_confirmed", "escort_confirmed", "weight_kg", "baseline_vitals",
                                           "pre_session_score"]


@pytest.mark.parametrize("status, action, ok", [
    ("checked_in", "start", True), ("in_progress", "start", False),
    ("checked_in", "record", True), ("in_progress", "record", True), ("completed", "record", False),
    ("in_progress", "complete", True), ("checked_in", "complete", False),
    ("checked_in", "abort", True), ("in_progress", "abort", True), ("aborted", "abort", False),
    ("completed", "abort", False),
])
def test_session_moves(status, action, ok):
    if ok:
        check_session_move(SessionStatus(status), action)
    else:
        with pytest.raises(Conflict):
            check_session_move(SessionStatus(status), action)


def test_a_signed_record_refuses_every_change():
    with pytest.raises(Conflict, match="addendum"):
        check_session_move(SessionStatus.IN_PROGRESS, "record", signed=True)


T0 = datetime(2026, 11, 30, 15, 0, tzinfo=timezone.utc)


def minutes(*values):
    return [T0 + timedelta(minutes=m) for m in values]


@pytest.mark.parametrize("discharge_after, bp_at, problems", [
    (120, minutes(-10, 40, 115), []),
    (119, minutes(-10, 40, 115), ["observation_shorter_than_required"]),
    (120, minutes(40, 115), ["blood_pressure_before_dosing_missing"]),
    (120, minutes(0, 40, 115), []),                      # at dosing counts as before
    (120, minutes(-10, 29, 115), ["blood_pressure_40_minutes_after_dosing_missing"]),
    (120, minutes(-10, 30, 115), []),
    (120, minutes(-10, 60, 115), []),
    (120, minutes(-10, 61, 115), ["blood_pressure_40_minutes_after_dosing_missing"]),
    (150, minutes(-10, 40, 119), ["blood_pressure_before_discharge_missing"]),
    (150, minutes(-10, 40, 120), []),
])
def test_esketamine_rems_monitoring_points(discharge_after, bp_at, problems):
    assert rems_monitoring_problems(T0, T0 + timedelta(minutes=discharge_after), bp_at) == problems


def test_monitoring_form_is_due_seven_days_after_the_session():
    assert monitoring_form_due(date(2026, 11, 30)) == date(2026, 12, 7)


@pytest.mark.parametrize("start, end, result", [
    (T0, T0 + timedelta(minutes=40), 40), (T0, T0 + timedelta(seconds=89), 1), (T0, None, None), (None, T0, None),
])
def test_minutes_between(start, end, result):
    assert minutes_between(start, end) == result


COMPLETE_RECORD = {
    "status": "completed", "fasting_confirmed": True, "escort_confirmed": True, "weight_kg": 70,
    "baseline_vitals": {"systolic": 120}, "pre_session_score": True, "drug": "ketamine", "route": "iv_infusion",
    "dose_mg": 35.0, "lot_number": "L1", "started_at": T0, "ended_at": T0, "vitals_during_session": True,
    "dissociation_score": 3, "discharged_at": T0,
}


@pytest.mark.parametrize("change, missing", [
    ({}, []),
    ({"lot_number": None}, ["lot_number"]),
    ({"dissociation_score": None}, ["dissociation_score"]),
    ({"dissociation_score": 0}, []),                         # a zero score is present
    ({"vitals_during_session": False}, ["vitals_during_session"]),
    ({"route": "intranasal_esketamine"}, ["sedation_checked"]),
    ({"route": "intranasal_esketamine", "sedation_checked": True}, []),
    ({"status": "aborted", "aborted_at": T0, "abort_reason_code": "vitals_alert"}, []),
    ({"status": "aborted", "aborted_at": T0}, ["abort_reason_code"]),
])
def test_a_record_is_signed_only_when_complete(change, missing):
    assert missing_for_signature({**COMPLETE_RECORD, **change}) == missing


@pytest.mark.parametrize("status", ["checked_in", "in_progress"])
def test_an_open_session_cannot_be_signed(status):
    with pytest.raises(Conflict):
        missing_for_signature({**COMPLETE_RECORD, "status": status})


@pytest.mark.parametrize("baseline, final, change, response, remission", [
    (20, 10, -50.0, True, False),     # exactly a 50 % drop is a response
    (20, 11, -45.0, False, False),
    (20, 4, -80.0, True, True),       # below 5 is remission
    (8, 5, -37.5, False, False),      # 5 is not remission
    (8, 4, -50.0, True, True),
    (10, 12, 20.0, False, False),     # worse
    (0, 0, 0.0, False, True),
    (0, 3, None, False, True),        # from 0 there is no percentage
    (20, None, None, False, False),   # no final score yet
    (None, 3, None, False, True),
])
def test_response_and_remission(baseline, final, change, response, remission):
    outcome = course_outcome(baseline, final)
    assert (outcome.change_percent, outcome.response, outcome.remission) == (change, response, remission)


@pytest.mark.parametrize("readings, ended, gaps", [
    ((15, 30, 45), 60, []),                         # every 15 minutes, to the end
    ((15, 31), 45, [(15, 31)]),                     # 16 minutes without a reading
    ((), 15, []),
    ((), 16, [(0, 16)]),
    ((-5, 10), None, []),                           # a pre-dose reading does not count; still running
    ((10, 40), None, [(10, 40)]),
])
def test_gaps_in_the_15_minute_vitals_monitoring(readings, ended, gaps):
    found = monitoring_gaps(T0, T0 + timedelta(minutes=ended) if ended is not None else None, minutes(*readings))
    assert found == [(T0 + timedelta(minutes=a), T0 + timedelta(minutes=b)) for a, b in gaps]

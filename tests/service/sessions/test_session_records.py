"""Check-in, dosing, vitals and alerts, discharge, abort, signing and
addenda, REMS monitoring forms and course outcomes, through the entrypoints."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from common.errors import Conflict, Forbidden, ValidationFailed
from tests.support.sessions import (
    BASELINE, CHECKLIST, DISCHARGE, FRONT_DESK, IV_PLAN, clinic_monday, clinic_time, discharge, iso,
)

MONDAY = clinic_monday()


@pytest.fixture
def book(call, patient_id, chairs, clinicians):
    def book(plan_changes=None, hour=9):
        plan = call("create_plan", {**IV_PLAN, "patient_id": patient_id, **(plan_changes or {})})
        return call("book_appointment", {"plan_id": plan["plan_id"], "starts_at": iso(clinic_time(MONDAY, hour)),
                                         "chair_id": chairs[0], "clinician_id": clinicians[0]})
    return book


@pytest.fixture
def appointment(book):
    return book()


def test_the_checklist_must_be_complete_before_start(arrived, call, appointment, count):
    session = call("check_in", arrived(appointment["appointment_id"]), {"fasting_confirmed": True, "weight_kg": 70})
    assert session["checklist"]["missing"] == ["escort_confirmed", "baseline_vitals", "pre_session_score"]
    with pytest.raises(Conflict, match="checklist is incomplete") as caught:
        call("start_session", session["session_id"], {"lot_number": "LOT-1"})
    assert caught.value.details["missing"] == ["escort_confirmed", "baseline_vitals", "pre_session_score"]
    assert count("outbox", "event_type = 'session.started'") == 0
    updated = call("update_checklist", session["session_id"],
                   {"escort_confirmed": True, "baseline_vitals": BASELINE, "mood_score": 4}, actor=FRONT_DESK)
    assert updated["checklist"]["missing"] == []
    started = call("start_session", session["session_id"], {"lot_number": "LOT-1"})
    assert (started["status"], started["dose_mg"], started["drug"]) == ("in_progress", 35.0, "ketamine")
    with pytest.raises(Conflict):
        call("check_in", arrived(appointment["appointment_id"]), CHECKLIST)


def test_the_dose_is_refused_above_the_plan_maximum(arrived, call, book, count):
    appointment = book({"mg_per_kg": 1.0, "max_dose_mg": 60})
    session = call("check_in", arrived(appointment["appointment_id"]), CHECKLIST)   # 70 kg × 1 mg/kg = 70 mg
    with pytest.raises(ValidationFailed, match="maximum") as caught:
        call("start_session", session["session_id"], {"lot_number": "LOT-1"})
    assert caught.value.details[0]["field"] == "dose_mg"
    with pytest.raises(ValidationFailed, match="above the 70.0 mg"):
        call("start_session", session["session_id"], {"lot_number": "LOT-1", "dose_mg": 75})
    assert call("get_session", session["session_id"])["status"] == "checked_in"
    assert call("start_session", session["session_id"], {"lot_number": "LOT-1", "dose_mg": 55})["dose_mg"] == 55.0


def test_only_a_clinician_starts_and_bad_input_is_named(arrived, call, appointment):
    session = call("check_in", arrived(appointment["appointment_id"]), CHECKLIST)
    with pytest.raises(Forbidden):
        call("start_session", session["session_id"], {"lot_number": "LOT-1"}, actor=FRONT_DESK)
    with pytest.raises(ValidationFailed) as caught:
        call("start_session", session["session_id"], {"lot_number": ""})
    assert caught.value.details[0]["field"] == "lot_number"
    for vitals, field in (({"systolic": 120}, ""), ({"spo2": 120}, "spo2"), ({}, ""), ({"pulse": 80}, "pulse")):
        with pytest.raises(ValidationFailed) as caught:
            call("record_vitals", session["session_id"], vitals)
        assert field in {e["field"] for e in caught.value.details}
    with pytest.raises(ValidationFailed):
        call("check_in", arrived(appointment["appointment_id"]), {"weight_kg": 5})


def test_a_vitals_alert_leaves_at_once_and_the_session_completes(arrived, call, appointment, events):
    events.listen("sessions")
    session = call("check_in", arrived(appointment["appointment_id"]), CHECKLIST)
    sid = session["session_id"]
    call("start_session", sid, {"lot_number": "LOT-1"})
    reading = call("record_vitals", sid, {"systolic": 184, "diastolic": 96, "heart_rate": 88, "spo2": 97})
    assert [a["code"] for a in reading["alerts"]] == ["systolic_high"]
    alert = events.wait_for("session.vitals_alert", timeout=2)["data"]
    assert set(alert) == {"patient_id", "session_id", "mrn", "chair_id", "clinician_id", "recorded_at", "alerts"}
    assert alert["alerts"] == [{"code": "systolic_high", "measure": "systolic", "value": 184, "threshold": 180}]
    call("record_observation", sid, {"dissociation_scale": "cadss", "dissociation_score": 12})
    call("record_side_effect", sid, {"effect": "nausea", "severity": "mild", "intervention": "ondansetron 4 mg"})
    with pytest.raises(ValidationFailed, match="infusion stopped"):
        call("complete_session", sid, DISCHARGE)
    with pytest.raises(Conflict, match="systolic"):
        call("complete_session", sid, discharge())
    call("record_vitals", sid, {"systolic": 128, "diastolic": 80, "heart_rate": 76, "spo2": 98})
    with pytest.raises(Conflict, match="escort_not_present"):
        call("complete_session", sid, discharge(escort_present=False))
    with pytest.raises(ValidationFailed) as caught:
        call("complete_session", sid, discharge(no_driving_advised=False))
    assert caught.value.details[0]["field"] == "no_driving_advised"
    done = call("complete_session", sid, discharge())
    assert done["status"] == "completed"
    completed = events.wait_for("session.completed")["data"]
    assert set(completed) == {"patient_id", "session_id", "appointment_id", "plan_id", "route", "drug", "dose_mg",
                              "started_at", "ended_at", "duration_minutes", "date_of_service", "clinician_id",
                              "sequence"}
    assert (completed["route"], completed["drug"], completed["dose_mg"], completed["sequence"]) == (
        "iv_infusion", "ketamine", 35.0, 1)
    assert "intervention" not in str(completed)
    assert call("get_appointment", appointment["appointment_id"])["status"] == "completed"


def test_signed_records_are_locked_and_amended_by_addenda(arrived, call, appointment):
    sid = call("check_in", arrived(appointment["appointment_id"]), CHECKLIST)["session_id"]
    call("start_session", sid, {"lot_number": "LOT-1"})
    call("record_vitals", sid, {"systolic": 124, "diastolic": 80, "heart_rate": 74, "spo2": 98})
    call("complete_session", sid, discharge())
    with pytest.raises(Conflict, match="dissociation_score") as caught:
        call("sign_session", sid)
    assert caught.value.details["missing"] == ["dissociation_score"]
    with pytest.raises(Conflict, match="cannot be recorded on"):
        call("record_observation", sid, {"dissociation_scale": "0-10", "dissociation_score": 3})
    with pytest.raises(Conflict, match="not signed"):
        call("add_addendum", sid, {"text": "late entry"})


def test_sign_then_addendum(arrived, call, appointment):
    sid = call("check_in", arrived(appointment["appointment_id"]), CHECKLIST)["session_id"]
    call("start_session", sid, {"lot_number": "LOT-1"})
    call("record_vitals", sid, {"systolic": 124, "diastolic": 80, "heart_rate": 74, "spo2": 98})
    call("record_observation", sid, {"dissociation_scale": "0-10", "dissociation_score": 3})
    call("complete_session", sid, discharge())
    with pytest.raises(Forbidden):
        call("sign_session", sid, actor=FRONT_DESK)
    signed = call("sign_session", sid)
    assert signed["signed_by"] == "dr.who (clinician)"
    with pytest.raises(Conflict, match="already signed"):
        call("sign_session", sid)
    with pytest.raises(Conflict, match="addendum"):
        call("record_side_effect", sid, {"effect": "headache", "severity": "mild"})
    call("add_addendum", sid, {"text": "Patient called next day: headache resolved."})
    view = call("get_session", sid)
    assert [(a["author"], a["text"][:7]) for a in view["addenda"]] == [("dr.who (clinician)", "Patient")]
    trail = call("list_record_access", view["patient_id"])
    assert [e["action"] for e in trail] == ["session_read", "addendum", "sign", "session_complete", "observation",
                                            "vitals", "session_start", "check_in", "appointment_book", "plan_create"]
    assert {e["actor"] for e in trail} == {"dr.who (clinician)"}


def test_abort_before_and_after_start(arrived, call, book, events):
    events.listen("sessions")
    first = call("check_in", arrived(book(hour=9)["appointment_id"]), {**CHECKLIST, "fasting_confirmed": False})
    call("abort_session", first["session_id"], {"reason_code": "checklist_incomplete", "note": "ate breakfast"})
    aborted = events.wait_for("session.aborted")["data"]
    assert (aborted["dose_mg"], aborted["started_at"], aborted["duration_minutes"], aborted["reason_code"]) == (
        None, None, None, "checklist_incomplete")
    assert "note" not in aborted and "ate breakfast" not in str(aborted)
    # Never started: dated the clinic's day it was called off.
    assert aborted["date_of_service"] == datetime.now(ZoneInfo("America/New_York")).date().isoformat()
    with pytest.raises(Conflict):
        call("start_session", first["session_id"], {"lot_number": "LOT-1"})
    with pytest.raises(ValidationFailed):
        call("abort_session", first["session_id"], {"reason_code": "bored"})


def test_esketamine_rems_monitoring_and_the_overdue_form(arrived, call, patient_id, chairs, clinicians, execute):
    call("record_rems_enrollment", patient_id, {"enrollment_id": "REMS-1", "enrolled_on": "2026-11-01"})
    plan = call("create_plan", {"patient_id": patient_id, "route": "intranasal_esketamine",
                                "indication": "major_depressive_disorder", "fixed_dose_mg": 84})
    appointment = call("book_appointment", {"plan_id": plan["plan_id"], "starts_at": iso(clinic_time(MONDAY, 9)),
                                            "chair_id": chairs[0], "clinician_id": clinicians[0]})
    assert appointment["ends_at"] == iso(clinic_time(MONDAY, 11))   # two-hour observation
    sid = call("check_in", arrived(appointment["appointment_id"]), CHECKLIST)["session_id"]
    started = call("start_session", sid, {"lot_number": "SPR-9"})
    assert started["dose_mg"] == 84.0
    # Charted as the session went: move the clock back two hours and a bit.
    for table, column in (("session_records", "checked_in_at"), ("session_records", "started_at"),
                          ("vitals_readings", "recorded_at")):
        execute(f"UPDATE {table} SET {column} = {column} - interval '130 minutes' WHERE session_id = :sid", sid=sid)
    dosed = call("get_session", sid)["started_at"]
    dosed_at = datetime.fromisoformat(dosed.replace("Z", "+00:00"))
    call("record_vitals", sid, {"systolic": 130, "diastolic": 82, "heart_rate": 80, "spo2": 97,
                                "recorded_at": iso(dosed_at + timedelta(minutes=40))})
    with pytest.raises(Conflict, match="blood_pressure_before_discharge_missing"):
        call("complete_session", sid, DISCHARGE)
    call("record_vitals", sid, {"systolic": 124, "diastolic": 80, "heart_rate": 74, "spo2": 98})
    call("record_observation", sid, {"dissociation_scale": "cadss", "dissociation_score": 8, "sedation_checked": True})
    done = call("complete_session", sid, DISCHARGE)
    assert done["monitoring_form_id"]
    assert call("list_monitoring_forms")["total"] == 0   # not yet due
    later = (MONDAY + timedelta(days=30)).isoformat()
    overdue = call("list_monitoring_forms", True, later)
    assert overdue["total"] == 1
    form = overdue["items"][0]
    assert (form["overdue"], form["content"]["dose_mg"], form["content"]["lot_number"]) == (True, 84.0, "SPR-9")
    assert form["content"]["monitoring_minutes"] >= 120
    call("submit_monitoring_form", form["form_id"], {"confirmation": "PMF-77"})
    assert call("list_monitoring_forms", True, later)["total"] == 0
    call("sign_session", sid)


def test_course_completion_reports_response_and_remission(arrived, call, book, events):
    events.listen("sessions")
    appointment = book({"induction_sessions": 1, "maintenance_interval_days": 28})
    sid = call("check_in", arrived(appointment["appointment_id"]), {**CHECKLIST, "pre_phq9": 12})["session_id"]
    call("start_session", sid, {"lot_number": "LOT-1"})
    call("record_vitals", sid, {"systolic": 124, "diastolic": 80, "heart_rate": 74, "spo2": 98})
    call("complete_session", sid, discharge())
    course = events.wait_for("course.completed")["data"]
    assert course == {"patient_id": course["patient_id"], "plan_id": appointment["plan_id"], "sessions_completed": 1,
                      "baseline_phq9": 20, "final_phq9": 12, "change_percent": -40.0, "response": False,
                      "remission": False}
    summary = call("record_phq9", appointment["plan_id"], {"total": 4})
    assert (summary["final_phq9"], summary["response"], summary["remission"]) == (4, True, True)
    treated_on = datetime.now(ZoneInfo("America/New_York")).date()
    assert summary["next_maintenance_due"] == (treated_on + timedelta(days=28)).isoformat()


def test_an_aborted_induction_session_is_replaced_and_completions_count_given_sessions(
        arrived, call, patient_id, chairs, clinicians, events):
    events.listen("sessions")
    plan = call("create_plan", {**IV_PLAN, "patient_id": patient_id, "induction_sessions": 2})

    def book(days):
        return call("book_appointment", {"plan_id": plan["plan_id"], "chair_id": chairs[0],
                                         "clinician_id": clinicians[0],
                                         "starts_at": iso(clinic_time(MONDAY + timedelta(days=days), 9))})

    first, second = book(0), book(2)
    aborted = call("check_in", arrived(first["appointment_id"]), CHECKLIST)["session_id"]
    call("abort_session", aborted, {"reason_code": "patient_request"})
    replacement = book(4)
    assert (replacement["kind"], replacement["sequence"]) == ("induction", 3)
    assert book(7)["kind"] == "maintenance"
    sid = call("check_in", arrived(second["appointment_id"]), CHECKLIST)["session_id"]
    call("start_session", sid, {"lot_number": "LOT-1"})
    call("record_vitals", sid, {"systolic": 124, "diastolic": 80, "heart_rate": 74, "spo2": 98})
    call("complete_session", sid, discharge())
    assert events.wait_for("session.completed")["data"]["sequence"] == 1
    assert events.events("course.completed") == []


def test_a_check_in_charted_after_the_fact_keeps_the_real_times(arrived, call, appointment, events):
    events.listen("sessions")
    now = datetime.now(timezone.utc)
    session = call("check_in", arrived(appointment["appointment_id"], now - timedelta(minutes=70)),
                   {**CHECKLIST, "checked_in_at": iso(now - timedelta(minutes=75))})
    assert session["checked_in_at"] == iso(now - timedelta(minutes=75))
    call("start_session", session["session_id"],
         {"lot_number": "LOT-1", "started_at": iso(now - timedelta(minutes=60))})
    for minutes_ago in (45, 30, 21):
        call("record_vitals", session["session_id"], {**BASELINE, "recorded_at": iso(now - timedelta(minutes=minutes_ago))})
    call("complete_session", session["session_id"], discharge(stopped_at=iso(now - timedelta(minutes=20))))
    completed = events.wait_for("session.completed")
    assert completed["data"]["duration_minutes"] == 40


@pytest.mark.parametrize("when, words", [(timedelta(hours=13), "within the last 12 hours"),
                                         (-timedelta(hours=1), "future")])
def test_a_check_in_cannot_be_charted_far_back_or_ahead(arrived, call, appointment, count, when, words):
    with pytest.raises(ValidationFailed, match=words):
        call("check_in", arrived(appointment["appointment_id"]),
             {**CHECKLIST, "checked_in_at": iso(datetime.now(timezone.utc) - when)})
    assert count("session_records") == 0


# ------------------------------------------------ check-in on the appointment's day


def test_an_appointment_days_ahead_cannot_be_checked_in_today(call, appointment, count):
    # Booked for a Monday at least a week ahead.
    with pytest.raises(Conflict, match="the appointment is at 09:00 on Mon") as caught:
        call("check_in", appointment["appointment_id"], CHECKLIST)
    assert caught.value.details["starts_at"] == appointment["starts_at"]
    assert count("session_records") == 0 and count("outbox", "event_type = 'session.checked_in'") == 0
    assert call("get_appointment", appointment["appointment_id"])["status"] == "scheduled"


def test_check_in_opens_an_hour_before_the_start(call, appointment, arrived, count):
    now = datetime.now(timezone.utc)
    zone = ZoneInfo("America/New_York")
    if (now + timedelta(minutes=90)).astimezone(zone).date() != now.astimezone(zone).date():
        pytest.skip("an appointment 90 minutes from now would be on the next clinic day")
    arrived(appointment["appointment_id"], now + timedelta(minutes=90))
    with pytest.raises(Conflict, match="check-in opens at") as caught:
        call("check_in", appointment["appointment_id"], CHECKLIST)
    assert caught.value.details["check_in_opens_at"] == iso(
        (now + timedelta(minutes=90)).replace(second=0, microsecond=0) - timedelta(minutes=60))
    assert count("session_records") == 0
    arrived(appointment["appointment_id"], now + timedelta(minutes=50))
    assert call("check_in", appointment["appointment_id"], CHECKLIST)["status"] == "checked_in"


def test_a_check_in_is_never_earlier_than_the_booking(call, appointment, arrived, execute, count):
    now = datetime.now(timezone.utc)
    arrived(appointment["appointment_id"], now)
    # Booked a moment ago for now (a walk-in): charting an arrival before that is refused.
    execute("UPDATE appointments SET created_at = :booked WHERE appointment_id = :a",
            booked=now - timedelta(minutes=5), a=appointment["appointment_id"])
    with pytest.raises(Conflict, match="cannot be earlier than its booking"):
        call("check_in", appointment["appointment_id"],
             {**CHECKLIST, "checked_in_at": iso(now - timedelta(minutes=20))})
    assert count("session_records") == 0
    session = call("check_in", appointment["appointment_id"],
                   {**CHECKLIST, "checked_in_at": iso(now - timedelta(minutes=4))})
    assert session["checked_in_at"] == iso(now - timedelta(minutes=4))


def test_check_in_closes_at_the_end_of_the_appointment_day(call, appointment, arrived, count):
    arrived(appointment["appointment_id"], datetime.now(timezone.utc) - timedelta(days=1))
    with pytest.raises(Conflict, match="check-in closed at the end of that day"):
        call("check_in", appointment["appointment_id"], CHECKLIST)
    assert count("session_records") == 0


def test_the_early_window_is_configuration(start_service, patient_id, databases):
    from services.sessions.service import SessionsService
    from tests.support.calls import as_staff
    from tests.support.sessions import CLINICIAN, move_to_today

    relaxed = as_staff(start_service(SessionsService, SESSIONS={"check_in_early_minutes": 24 * 60}), CLINICIAN)
    chair = relaxed("add_resource", {"kind": "chair", "name": "Chair 9"})["resource_id"]
    clinician = relaxed("add_resource", {"kind": "clinician", "name": "Dr Z"})["resource_id"]
    plan = relaxed("create_plan", {**IV_PLAN, "patient_id": patient_id})
    booked = relaxed("book_appointment", {"plan_id": plan["plan_id"], "starts_at": iso(clinic_time(MONDAY, 9)),
                                          "chair_id": chair, "clinician_id": clinician})
    # Later the same clinic day (whatever the hour now), booked well before.
    zone = ZoneInfo("America/New_York")
    end_of_day = datetime.combine(datetime.now(zone).date(), datetime.max.time(), zone) - timedelta(minutes=1)
    move_to_today(databases.engine("sessions"), booked["appointment_id"], end_of_day.astimezone(timezone.utc))
    assert relaxed("check_in", booked["appointment_id"], CHECKLIST)["status"] == "checked_in"


# ------------------------------------------------ the dose is never above the prescription


def test_the_charted_dose_is_rounded_down_never_above_weight_times_mg_per_kg(call, book, arrived):
    appointment = book()
    session = call("check_in", arrived(appointment["appointment_id"]), {**CHECKLIST, "weight_kg": 62.5})
    started = call("start_session", session["session_id"], {"lot_number": "LOT-1"})
    assert started["dose_mg"] == 31.2   # 62.5 kg × 0.5 mg/kg = 31.25 mg


def test_a_plan_caps_the_dose_per_kg(call, book, arrived, count):
    appointment = book({"mg_per_kg": 0.5, "max_mg_per_kg": 0.6, "max_dose_mg": 75})
    plan = call("get_plan", appointment["plan_id"])
    assert plan["max_mg_per_kg"] == 0.6
    # Titrating the protocol up stops at the per-kg maximum.
    with pytest.raises(ValidationFailed, match="at least the plan's 0.75 mg/kg") as caught:
        call("update_plan", plan["plan_id"], {"mg_per_kg": 0.75})
    assert caught.value.details[0]["field"] == "max_mg_per_kg"
    assert call("get_plan", plan["plan_id"])["mg_per_kg"] == 0.5
    call("update_plan", plan["plan_id"], {"mg_per_kg": 0.6})
    session = call("check_in", arrived(appointment["appointment_id"]), {**CHECKLIST, "weight_kg": 70.7})
    started = call("start_session", session["session_id"], {"lot_number": "LOT-1"})
    assert started["dose_mg"] == 42.4   # 70.7 kg × 0.6 mg/kg = 42.42 mg


@pytest.mark.parametrize("plan, field", [
    ({"mg_per_kg": 0.555}, "mg_per_kg"),              # a third decimal would be rounded by the database
    ({"max_mg_per_kg": 0.4}, "max_mg_per_kg"),        # below the 0.5 mg/kg protocol
    ({"max_mg_per_kg": 0.505}, "max_mg_per_kg"),
])
def test_plan_rates_that_would_be_changed_by_rounding_are_refused(call, patient_id, count, plan, field):
    with pytest.raises(ValidationFailed) as caught:
        call("create_plan", {**IV_PLAN, "patient_id": patient_id, **plan})
    assert caught.value.details[0]["field"] == field
    assert count("treatment_plans") == 0


def test_the_plan_maximum_is_rounded_down_too(call, patient_id):
    plan = call("create_plan", {**IV_PLAN, "patient_id": patient_id, "max_dose_mg": 62.58})
    assert plan["max_dose_mg"] == 62.5
    assert call("update_plan", plan["plan_id"], {"max_dose_mg": 40.09})["max_dose_mg"] == 40.0


def test_the_day_view_shows_each_appointments_session_and_its_vitals_alerts(arrived, call, appointment):
    """What the staff console's day board shows for each chair."""
    arrived(appointment["appointment_id"])
    local_day = datetime.now(ZoneInfo("America/New_York")).date().isoformat()

    def shown():
        [item] = call("get_schedule", local_day)["items"]
        return {k: item[k] for k in ("status", "session_id", "session_status", "vitals_alerts")}

    assert shown() == {"status": "scheduled", "session_id": None, "session_status": None, "vitals_alerts": 0}
    sid = call("check_in", appointment["appointment_id"], CHECKLIST)["session_id"]
    call("start_session", sid, {"lot_number": "KET-1"})
    call("record_vitals", sid, {"systolic": 184, "diastolic": 96, "heart_rate": 88, "spo2": 97})
    call("record_vitals", sid, {"systolic": 128, "diastolic": 80, "heart_rate": 76, "spo2": 98})
    assert shown() == {"status": "in_session", "session_id": sid, "session_status": "in_progress",
                       "vitals_alerts": 1}

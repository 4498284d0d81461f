"""The outcome trajectory through sessions' entrypoints: staff scores taken at
check-in (PHQ-9 and GAD-7) and self-reported ones from intake's event in one
series, each marked with its source; the completed sessions as markers; the
FHIR export valid; the chart drawn; every read audited; response and
remission still PHQ-9's alone."""
import uuid
from datetime import timedelta
from xml.etree import ElementTree

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation

from common.errors import NotFound, ValidationFailed
from tests.support.sessions import CHECKLIST, IV_PLAN, approval_data, clinic_monday, clinic_time, discharge, iso

MONDAY = clinic_monday()


def self_report(patient_id, instrument, total, completed_at):
    return {"patient_id": patient_id, "request_id": str(uuid.uuid4()), "response_id": str(uuid.uuid4()),
            "instrument": instrument, "total": total, "band": "mild", "previous_total": None,
            "risk_flags": [], "completed_at": completed_at}


@pytest.fixture
def course(call, patient_id, chairs, clinicians, arrived):
    """A plan with one completed session (PHQ-9 14 and GAD-7 11 at check-in)."""
    plan = call("create_plan", {**IV_PLAN, "patient_id": patient_id})
    appointment = call("book_appointment", {"plan_id": plan["plan_id"], "starts_at": iso(clinic_time(MONDAY, 9)),
                                            "chair_id": chairs[0], "clinician_id": clinicians[0]})
    sid = call("check_in", arrived(appointment["appointment_id"]), {**CHECKLIST, "pre_gad7": 11})["session_id"]
    call("start_session", sid, {"lot_number": "LOT-1"})
    call("record_vitals", sid, {"systolic": 124, "diastolic": 80, "heart_rate": 74, "spo2": 98})
    call("complete_session", sid, discharge())
    return plan["plan_id"], sid


def test_staff_and_self_reported_scores_make_one_series_marked_by_source(call, patient_id, course, deliver):
    plan_id, sid = course
    later = iso(clinic_time(MONDAY, 9) + timedelta(days=20))
    deliver("self_report.completed", self_report(patient_id, "gad7", 6, later), "on_self_report_completed")
    deliver("self_report.completed", self_report(patient_id, "phq9", 8, later), "on_self_report_completed")
    found = call("trajectory", patient_id)
    assert [(p["instrument"], p["total"], p["source"], p["session_id"]) for p in found["points"]] == [
        ("phq9", 14, "staff", sid), ("gad7", 11, "staff", sid),
        ("gad7", 6, "self_report", None), ("phq9", 8, "self_report", None)]
    assert found["points"][2]["recorded_at"] == later
    [marker] = found["sessions"]
    assert (marker["session_id"], marker["number"], marker["plan_id"]) == (sid, 1, plan_id)
    assert [c["plan_id"] for c in found["courses"]] == [plan_id]
    assert call("trajectory", patient_id, plan_id) == found


def test_gad7_does_not_count_towards_response_or_remission(call, patient_id, course, deliver):
    plan_id, _ = course
    before = call("get_course_summary", plan_id)
    deliver("self_report.completed", self_report(patient_id, "gad7", 2, iso(clinic_time(MONDAY, 9) + timedelta(days=9))),
            "on_self_report_completed")
    after = call("get_course_summary", plan_id)
    assert after == before
    assert [s["total"] for s in after["phq9"]] == [14]
    assert (after["final_phq9"], after["response"], after["remission"]) == (14, False, False)


def test_a_corrected_check_in_score_replaces_only_its_own_instrument(call, patient_id, chairs, clinicians, arrived):
    plan = call("create_plan", {**IV_PLAN, "patient_id": patient_id})
    appointment = call("book_appointment", {"plan_id": plan["plan_id"], "starts_at": iso(clinic_time(MONDAY, 9)),
                                            "chair_id": chairs[0], "clinician_id": clinicians[0]})
    sid = call("check_in", arrived(appointment["appointment_id"]), {**CHECKLIST, "pre_gad7": 11})["session_id"]
    call("update_checklist", sid, {"pre_gad7": 9})
    points = call("trajectory", patient_id)["points"]
    assert sorted((p["instrument"], p["total"]) for p in points) == [("gad7", 9), ("phq9", 14)]
    assert call("get_session", sid)["checklist"]["pre_gad7"] == 9


def test_the_fhir_export_is_a_valid_bundle_of_observations(call, patient_id, course, deliver):
    deliver("self_report.completed", self_report(patient_id, "gad7", 6, iso(clinic_time(MONDAY, 9) + timedelta(days=3))),
            "on_self_report_completed")
    bundle = call("export_trajectory_fhir", patient_id)
    Bundle.model_validate(bundle)
    observations = [entry["resource"] for entry in bundle["entry"]]
    for observation in observations:
        Observation.model_validate(observation)
    assert [(o["code"]["coding"][0]["code"], o["valueInteger"], "performer" in o) for o in observations] == [
        ("44261-6", 14, False), ("70274-6", 11, False), ("70274-6", 6, True)]
    assert observations[2]["performer"] == [{"reference": f"Patient/{patient_id}"}]


def test_the_chart_marks_the_sessions_and_the_self_reported_points(call, patient_id, course, deliver):
    _, sid = course
    deliver("self_report.completed", self_report(patient_id, "phq9", 9, iso(clinic_time(MONDAY, 9) + timedelta(days=3))),
            "on_self_report_completed")
    svg = call("trajectory_chart", patient_id)
    root = ElementTree.fromstring(svg)
    assert root.get("role") == "img"
    classes = [e.get("class") for e in root.iter() if e.get("class")]
    assert classes.count("session-marker") == 1
    assert classes.count("point staff") == 2 and classes.count("point self_report") == 1


def test_each_read_is_audited_as_a_read_of_the_patients_record(call, patient_id, course):
    call("trajectory", patient_id)
    call("export_trajectory_fhir", patient_id)
    call("trajectory_chart", patient_id, course[0])
    trail = call("list_record_access", patient_id)
    assert [(row["action"], row["actor"]) for row in trail[:3]] == [
        ("outcomes_chart_read", "dr.who (clinician)"), ("outcomes_fhir_export", "dr.who (clinician)"),
        ("outcomes_read", "dr.who (clinician)")]
    assert trail[0]["subject_id"] == course[0]


def test_a_patient_with_no_course_yet_has_an_empty_trajectory(call, patient_id):
    assert call("trajectory", patient_id) == {"patient_id": patient_id, "courses": [], "points": [], "sessions": []}


def test_unknown_patients_plans_of_others_and_bad_ids_are_refused(call, patient_id, course, deliver):
    with pytest.raises(NotFound):
        call("trajectory", str(uuid.uuid4()))
    with pytest.raises(NotFound):
        call("trajectory", patient_id, str(uuid.uuid4()))
    other = str(uuid.uuid4())
    deliver("intake.approved", approval_data(other), "on_intake_approved")
    with pytest.raises(NotFound):
        call("export_trajectory_fhir", other, course[0])
    with pytest.raises(ValidationFailed):
        call("trajectory_chart", "  ")

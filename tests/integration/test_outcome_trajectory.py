"""The outcome trajectory end to end on the real broker: staff take PHQ-9 and
GAD-7 at check-in through the gateway, the patient answers a GAD-7 and a
PHQ-9 by self-report link (intake scores them and publishes
``self_report.completed``), and the gateway's outcome routes show one series
with each score marked by its source, as JSON, as a FHIR R4 Bundle that
validates, and as an SVG chart with the session marked. A PHQ-9 staff
enter in intake during a course (``questionnaire.scored``) joins the series
marked staff."""
from xml.etree import ElementTree

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation

from common import self_report_links as links
from tests.integration.test_sessions_flow import CLIN, FRONT, approved_in_sessions, resources
from tests.support.billing import wait_until
from tests.support.intake import GAD7_MILD
from tests.support.sessions import BASELINE, CHECKLIST, clinic_monday, clinic_time, discharge, iso, move_to_today

PHQ9_MILD = [1, 1, 1, 1, 1, 1, 0, 0, 0]


def ok(answer, status=(200, 201)):
    assert answer.status_code in status, f"{answer.request.url}: {answer.status_code} {answer.text[:300]}"
    return answer.json()


def answer_by_link(rpc, api, clinic_config, patient_id, questionnaire, answers):
    request = ok(api.post(f"/api/v1/patients/{patient_id}/self-report-requests", headers=FRONT,
                          json={"questionnaire": questionnaire}))
    token = links.token_for(links.settings(clinic_config)["secret"], request["request_id"])
    assert rpc.intake.submit_self_report(token, answers)["status"] == "submitted"


@pytest.mark.timeout(120)
def test_staff_and_self_reported_scores_reach_the_outcome_routes_marked_by_source(clinic, clinic_config, databases):
    rpc, api = clinic
    pid = approved_in_sessions(rpc, api)
    chair, _, doctor, _ = resources(api)
    plan = ok(api.post("/api/v1/plans", headers=CLIN, json={"patient_id": pid, "route": "iv_infusion",
                                                           "indication": "treatment_resistant_depression"}))
    appointment = ok(api.post("/api/v1/appointments", headers=FRONT, json={
        "plan_id": plan["plan_id"], "starts_at": iso(clinic_time(clinic_monday(), 9)), "chair_id": chair,
        "clinician_id": doctor}))
    move_to_today(databases.engine("sessions"), appointment["appointment_id"])
    sid = ok(api.post(f"/api/v1/appointments/{appointment['appointment_id']}/check-in", headers=CLIN,
                      json={**CHECKLIST, "pre_phq9": 14, "pre_gad7": 12}))["session_id"]
    ok(api.post(f"/api/v1/sessions/{sid}/start", headers=CLIN, json={"lot_number": "KET-1"}))
    ok(api.post(f"/api/v1/sessions/{sid}/vitals", headers=CLIN, json=BASELINE))
    ok(api.post(f"/api/v1/sessions/{sid}/completion", headers=CLIN, json=discharge()))

    answer_by_link(rpc, api, clinic_config, pid, "gad7", GAD7_MILD)
    answer_by_link(rpc, api, clinic_config, pid, "phq9", PHQ9_MILD)
    series = wait_until(lambda: (lambda found: found if len(found["points"]) == 4 else None)(
        ok(api.get(f"/api/v1/patients/{pid}/outcomes", headers=CLIN))), timeout=30)
    assert [(p["instrument"], p["total"], p["source"]) for p in series["points"]] == [
        ("phq9", 14, "staff"), ("gad7", 12, "staff"), ("gad7", 6, "self_report"), ("phq9", 6, "self_report")]
    assert [(s["session_id"], s["number"]) for s in series["sessions"]] == [(sid, 1)]
    summary = ok(api.get(f"/api/v1/plans/{plan['plan_id']}/summary", headers=CLIN))
    assert [s["total"] for s in summary["phq9"]] == [14, 6]  # GAD-7 stays out of response and remission

    answer = api.get(f"/api/v1/patients/{pid}/outcomes/fhir", headers=CLIN)
    assert answer.headers["content-type"].startswith("application/fhir+json")
    bundle = Bundle.model_validate(answer.json()).model_dump(mode="json")
    observations = [entry["resource"] for entry in bundle["entry"]]
    for observation in observations:
        Observation.model_validate(observation)
    assert [(o["code"]["coding"][0]["code"], o["valueInteger"], o["method"]["coding"][0]["code"])
            for o in observations] == [
        ("44261-6", 14, "score-source/staff"), ("70274-6", 12, "score-source/staff"),
        ("70274-6", 6, "score-source/self_report"), ("44261-6", 6, "score-source/self_report")]
    assert observations[2]["performer"] == [{"reference": f"Patient/{pid}"}]

    chart = api.get(f"/api/v1/patients/{pid}/outcomes/chart.svg", headers=CLIN,
                    params={"plan_id": plan["plan_id"]})
    assert chart.status_code == 200 and chart.headers["content-type"].startswith("image/svg+xml")
    assert "default-src 'none'" in chart.headers["content-security-policy"]
    root = ElementTree.fromstring(chart.text)
    classes = [e.get("class") for e in root.iter() if e.get("class")]
    assert classes.count("session-marker") == 1
    assert (classes.count("point staff"), classes.count("point self_report")) == (2, 2)

    trail = [(row["action"], row["actor"]) for row in rpc.sessions.list_record_access(pid)[:4]]
    assert trail == [("outcomes_chart_read", "dr.who (clinician)"), ("outcomes_fhir_export", "dr.who (clinician)"),
                     ("summary_read", "dr.who (clinician)"), ("outcomes_read", "dr.who (clinician)")]


def test_the_outcome_routes_are_for_clinicians_and_name_bad_input(clinic, databases):
    rpc, api = clinic
    pid = approved_in_sessions(rpc, api)
    for path in ("outcomes", "outcomes/fhir", "outcomes/chart.svg"):
        assert api.get(f"/api/v1/patients/{pid}/{path}", headers=FRONT).status_code == 403
        assert api.get(f"/api/v1/patients/{pid}/{path}", headers=CLIN).status_code == 200
        missing = api.get(f"/api/v1/patients/{pid}/{path}", headers=CLIN,
                          params={"plan_id": "3f2a7c1e-0000-4000-8000-000000000001"})
        assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
        too_long = api.get(f"/api/v1/patients/{pid}/{path}", headers=CLIN, params={"plan_id": "x" * 40})
        assert too_long.status_code == 422


@pytest.mark.timeout(60)
def test_a_phq9_staff_enter_in_intake_during_a_course_reaches_the_outcomes_marked_staff(clinic):
    rpc, api = clinic
    pid = approved_in_sessions(rpc, api)
    plan = ok(api.post("/api/v1/plans", headers=CLIN, json={"patient_id": pid, "route": "iv_infusion",
                                                           "indication": "treatment_resistant_depression"}))
    entered = ok(api.post(f"/api/v1/patients/{pid}/questionnaires", headers=CLIN,
                          json={"instrument": "phq9", "answers": [1, 1, 1, 1, 0, 0, 0, 0, 0]}), (201,))
    # The intake's own PHQ-9 (10) was taken before the plan; only the one entered now is looked for.
    series = wait_until(lambda: (lambda found: found if any(p["total"] == 4 for p in found["points"]) else None)(
        ok(api.get(f"/api/v1/patients/{pid}/outcomes", headers=CLIN))), timeout=30)
    point = next(p for p in series["points"] if p["total"] == 4)
    assert (point["instrument"], point["source"], point["plan_id"]) == ("phq9", "staff", plan["plan_id"])
    assert point["recorded_at"] == entered["completed_at"]
    actions = [row["action"] for row in rpc.sessions.list_record_access(pid)]
    assert "phq9_staff_entered" in actions

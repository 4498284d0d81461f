"""A PHQ-9 or GAD-7 the patient reported by link joins the active plan's
outcome series, marked self-reported; the course summary counts the PHQ-9
alone; other questionnaires and patients without a plan change nothing."""
import uuid

from tests.support.sessions import IV_PLAN


def completed(patient_id, instrument="phq9", total=6):
    return {"patient_id": patient_id, "request_id": str(uuid.uuid4()), "response_id": str(uuid.uuid4()),
            "instrument": instrument, "total": total, "band": "mild", "previous_total": None,
            "risk_flags": [], "completed_at": "2026-03-02T15:00:00Z"}


def test_a_self_reported_phq9_or_gad7_joins_the_active_plans_outcomes(call, patient_id, deliver, count):
    plan = call("create_plan", {**IV_PLAN, "patient_id": patient_id})
    deliver("self_report.completed", completed(patient_id, total=6), "on_self_report_completed")
    deliver("self_report.completed", completed(patient_id, "gad7", 9), "on_self_report_completed")
    deliver("self_report.completed", completed(patient_id, "pcl5", 40), "on_self_report_completed")
    deliver("self_report.completed", completed(str(uuid.uuid4())), "on_self_report_completed")
    summary = call("get_course_summary", plan["plan_id"])
    assert [(s["total"], s["recorded_at"]) for s in summary["phq9"]] == [(6, "2026-03-02T15:00:00Z")]
    assert summary["final_phq9"] == 6
    assert count("outcome_scores") == 2
    assert count("outcome_scores", "instrument = 'gad7' AND total = 9 AND source = 'self_report'") == 1

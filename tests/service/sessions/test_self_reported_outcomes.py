"""A PHQ-9 or GAD-7 the patient reported by link joins the active plan's
outcome series, marked self-reported; the course summary counts the PHQ-9
alone; other questionnaires and patients without a plan change nothing. One staff
entered in intake (``questionnaire.scored``) joins it marked staff, once
however often the event is delivered."""
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


def scored(patient_id, instrument="phq9", total=11):
    return {"patient_id": patient_id, "response_id": str(uuid.uuid4()), "instrument": instrument, "total": total,
            "band": "moderate", "completed_at": "2026-03-03T16:00:00Z", "source": "staff"}


def test_a_phq9_or_gad7_staff_entered_in_intake_joins_the_series_marked_staff_and_audited(
        call, patient_id, deliver, count):
    plan = call("create_plan", {**IV_PLAN, "patient_id": patient_id})
    deliver("questionnaire.scored", scored(patient_id, total=11), "on_questionnaire_scored")
    deliver("questionnaire.scored", scored(patient_id, "gad7", 8), "on_questionnaire_scored")
    deliver("questionnaire.scored", scored(str(uuid.uuid4())), "on_questionnaire_scored")  # no plan: nothing
    summary = call("get_course_summary", plan["plan_id"])
    assert [(s["total"], s["recorded_at"]) for s in summary["phq9"]] == [(11, "2026-03-03T16:00:00Z")]
    assert count("outcome_scores", "source = 'staff'") == 2
    assert count("outcome_scores", "instrument = 'gad7' AND total = 8 AND source = 'staff'") == 1
    audited = [(row["action"], row["subject_id"]) for row in call("list_record_access", patient_id)
               if row["action"].endswith("_staff_entered")]
    assert audited == [("gad7_staff_entered", plan["plan_id"]), ("phq9_staff_entered", plan["plan_id"])]


def test_a_redelivered_staff_entered_score_adds_no_second_row(call, patient_id, deliver, count):
    call("create_plan", {**IV_PLAN, "patient_id": patient_id})
    data = scored(patient_id)
    event_id = str(uuid.uuid4())
    deliver("questionnaire.scored", data, "on_questionnaire_scored", event_id=event_id)
    deliver("questionnaire.scored", data, "on_questionnaire_scored", event_id=event_id)
    assert count("outcome_scores") == 1
    assert count("record_access", "action = 'phq9_staff_entered'") == 1

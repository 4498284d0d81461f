"""A plan or a score replayed from its Idempotency-Key is in the patient's
access log, naming the plan, like the first call."""
from tests.support.sessions import CLINICIAN, IV_PLAN


def test_a_replayed_plan_and_score_are_in_the_access_log(call, patient_id, count):
    given = {**IV_PLAN, "patient_id": patient_id}
    plan = call("create_plan", given, "plan-1")
    assert call("create_plan", given, "plan-1") == plan
    first = call("record_phq9", plan["plan_id"], {"total": 12}, "phq9-1")
    assert call("record_phq9", plan["plan_id"], {"total": 12}, "phq9-1") == first
    trail = [(row["action"], row["actor"], row["subject_id"]) for row in call("list_record_access", patient_id)]
    assert trail[:4] == [(action, CLINICIAN, plan["plan_id"])
                         for action in ("phq9_replayed", "phq9", "plan_create_replayed", "plan_create")]
    assert count("treatment_plans") == 1

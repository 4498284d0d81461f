"""Ready-made intake inputs, and a helper that walks a patient through
intake by RPC (used by the other services' tests too)."""
from __future__ import annotations

PATIENT = {
    "given_name": "Ana", "family_name": "Lopez", "date_of_birth": "1980-02-03", "sex": "female",
    "phone": "+14155550123", "email": "ana@example.com", "time_zone": "America/Los_Angeles",
    "emergency_contact": {"name": "Luis Lopez", "phone": "+14155550199", "relationship": "brother"},
    "weight_kg": 70, "height_cm": 170, "primary_condition": "treatment_resistant_depression",
    "diagnosis_codes": ["F33.2"],
}
HISTORY = {"conditions": [], "medications": [{"name": "sertraline", "dose": "100 mg"}], "allergies": []}
PHQ9_MODERATE = [2, 2, 1, 1, 1, 1, 1, 1, 0]
GAD7_MILD = [1, 1, 1, 1, 1, 1, 0]


def approved_patient(call, patient=None, history=None) -> dict:
    """``call(method, *args)`` is an RPC caller; returns the patient."""
    record = call("register_patient", {**PATIENT, **(patient or {})})
    pid = record["patient_id"]
    call("record_consent", pid, {"kind": "treatment", "method": "written"})
    call("record_consent", pid, {"kind": "sms", "method": "electronic"})
    call("record_consent", pid, {"kind": "email", "method": "electronic"})
    call("record_medical_history", pid, history or HISTORY)
    call("submit_questionnaire", pid, {"instrument": "phq9", "answers": PHQ9_MODERATE})
    call("submit_questionnaire", pid, {"instrument": "gad7", "answers": GAD7_MILD})
    call("submit_intake", pid)
    call("screen_patient", pid, {"systolic": 122, "diastolic": 78})
    call("approve_intake", pid, {"reason": "suitable for IV ketamine", "clinician": "dr.who"})
    return record

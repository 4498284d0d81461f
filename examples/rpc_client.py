"""Calling the clinic from another system over nameko RPC.

Run the clinic (bin/run-clinic), then:  .venv/bin/python examples/rpc_client.py

An integrating system needs only nameko and the broker's address. Say who
you are in ``context_data["actor"]``: intake records it in the patient's
access log. Errors arrive as ``nameko.exceptions.RemoteError`` whose
``exc_type`` is ValidationFailed, NotFound, Conflict or Forbidden; a caller
that can import ``common.errors`` gets those classes back with ``.details``.
"""
import os

from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ClusterRpcProxy

CONFIG = {"AMQP_URI": os.environ.get("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")}
WHO = {"actor": "ehr-sync (system)"}


def main():
    with ClusterRpcProxy(CONFIG, context_data=WHO, timeout=30) as clinic:
        patient = clinic.intake.register_patient({
            "given_name": "Sam", "family_name": "Rivera", "date_of_birth": "1979-06-01", "sex": "male",
            "phone": "+12125550147", "email": "sam.rivera@example.org", "time_zone": "America/New_York",
            "primary_condition": "treatment_resistant_depression", "diagnosis_codes": ["F33.2"],
            "weight_kg": 82, "height_cm": 178,
        })
        pid = patient["patient_id"]
        print("registered", patient["mrn"], pid)

        clinic.intake.record_consent(pid, {"kind": "treatment", "method": "written"})
        clinic.intake.record_medical_history(pid, {"conditions": [], "medications": [{"name": "sertraline"}]})
        phq9 = clinic.intake.submit_questionnaire(pid, {"instrument": "phq9", "answers": [2, 2, 2, 1, 1, 1, 1, 1, 0]})
        print("PHQ-9", phq9["total"], phq9["band"])
        clinic.intake.submit_questionnaire(pid, {"instrument": "gad7", "answers": [1, 1, 1, 1, 1, 1, 1]})
        clinic.intake.submit_intake(pid)
        screening = clinic.intake.screen_patient(pid, {"systolic": 128, "diastolic": 84})
        print("screening", screening["outcome"], [r["code"] for r in screening["reasons"]])
        decision = clinic.intake.approve_intake(pid, {"reason": "suitable for IV ketamine", "clinician": "dr.lee"})
        print("intake", decision["status"], "by", decision["decided_by"])

        try:
            clinic.intake.submit_questionnaire(pid, {"instrument": "gad7", "answers": [1, 1, 9]})
        except RemoteError as error:
            print("rejected as expected:", error.exc_type, "-", error.value)


if __name__ == "__main__":
    main()

"""The FHIR export validates against the fhir.resources models (R4B, the
R4-compatible release fhir.resources ships)."""
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from services.intake.service import IntakeService
from tests.support.calls import as_staff
from tests.support.intake import PATIENT, PHQ9_MODERATE

MODELS = {"Patient": Patient, "QuestionnaireResponse": QuestionnaireResponse, "Observation": Observation}


@pytest.fixture
def call(start_service):
    return as_staff(start_service(IntakeService), "dr.who (clinician)")


def test_patient_bundle_is_valid_fhir(call):
    pid = call("register_patient", PATIENT)["patient_id"]
    call("submit_questionnaire", pid, {"instrument": "phq9", "answers": PHQ9_MODERATE})
    bundle = call("export_fhir", pid)
    Bundle.model_validate(bundle)
    kinds = [entry["resource"]["resourceType"] for entry in bundle["entry"]]
    assert kinds == ["Patient", "QuestionnaireResponse", "Observation"]
    for entry in bundle["entry"]:
        MODELS[entry["resource"]["resourceType"]].model_validate(entry["resource"])
    patient, response, score = (entry["resource"] for entry in bundle["entry"])
    assert patient["identifier"][0]["value"].startswith("MRN")
    assert len(response["item"]) == 9
    assert score["valueInteger"] == sum(PHQ9_MODERATE)
    assert score["code"]["coding"][0]["code"] == "44261-6"
    assert "fhir_export" in {e["action"] for e in call("list_record_access", pid)}

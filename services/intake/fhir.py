"""Read-only FHIR R4 export of what intake holds: the Patient, each
QuestionnaireResponse, and an Observation for each questionnaire's total."""
from __future__ import annotations

from services.intake.models import Patient, QuestionnaireResponse
from common.events import iso

MRN_SYSTEM = "urn:clinic:mrn"
LOCAL_CODES = "urn:clinic:codes"
LOINC = "http://loinc.org"

# Instrument → (questionnaire canonical, LOINC code of the total score, display)
INSTRUMENT_CODES = {
    "phq9": ("http://loinc.org/q/44249-1", ("44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score"),
             "PHQ-9"),
    "gad7": ("http://loinc.org/q/69737-5", ("70274-6", "Generalized anxiety disorder 7 item (GAD-7) total score"),
             "GAD-7"),
    "pcl5": (f"{LOCAL_CODES}/questionnaire/pcl5", None, "PCL-5"),
    "cssrs": (f"{LOCAL_CODES}/questionnaire/cssrs-screener", None, "C-SSRS screener"),
    "check_in": (f"{LOCAL_CODES}/questionnaire/post-session-check-in", None, "Post-session check-in"),
}


def patient_resource(record: Patient) -> dict:
    resource = {
        "resourceType": "Patient",
        "id": record.patient_id,
        "identifier": [{"use": "usual", "system": MRN_SYSTEM, "value": record.mrn}],
        "name": [{"use": "official", "family": record.family_name, "given": [record.given_name]}],
        "gender": record.sex,
        "birthDate": record.date_of_birth.isoformat(),
    }
    telecom = []
    if record.phone:
        telecom.append({"system": "phone", "value": record.phone, "use": "mobile"})
    if record.email:
        telecom.append({"system": "email", "value": record.email})
    if telecom:
        resource["telecom"] = telecom
    if record.emergency_contact:
        contact = record.emergency_contact
        resource["contact"] = [{
            "relationship": [{"text": contact.get("relationship") or "emergency contact"}],
            "name": {"text": contact["name"]},
            "telecom": [{"system": "phone", "value": contact["phone"]}],
        }]
    return resource


def questionnaire_response_resource(record: Patient, response: QuestionnaireResponse) -> dict:
    canonical, _, title = INSTRUMENT_CODES[response.instrument]
    return {
        "resourceType": "QuestionnaireResponse",
        "id": response.response_id,
        "questionnaire": canonical,
        "status": "completed",
        "subject": {"reference": f"Patient/{record.patient_id}"},
        "authored": iso(response.completed_at),
        "item": [
            {"linkId": str(number), "text": f"{title} item {number}", "answer": [{"valueInteger": value}]}
            for number, value in enumerate(response.answers, start=1)
        ],
    }


def score_observation_resource(record: Patient, response: QuestionnaireResponse) -> dict:
    _, loinc, title = INSTRUMENT_CODES[response.instrument]
    coding = [{"system": LOCAL_CODES, "code": f"{response.instrument}-total", "display": f"{title} total score"}]
    if loinc:
        coding.insert(0, {"system": LOINC, "code": loinc[0], "display": loinc[1]})
    return {
        "resourceType": "Observation",
        "id": f"{response.response_id}-total",
        "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "survey"}]}],
        "code": {"coding": coding, "text": f"{title} total score"},
        "subject": {"reference": f"Patient/{record.patient_id}"},
        "effectiveDateTime": iso(response.completed_at),
        "valueInteger": response.total,
        "interpretation": [{"text": response.band}],
        "derivedFrom": [{"reference": f"QuestionnaireResponse/{response.response_id}"}],
    }


def patient_bundle(record: Patient, responses: list[QuestionnaireResponse]) -> dict:
    resources = [patient_resource(record)]
    for response in responses:
        resources.append(questionnaire_response_resource(record, response))
        resources.append(score_observation_resource(record, response))
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}" if r["resourceType"] != "Observation"
                   else f"urn:clinic:observation:{r['id']}", "resource": r} for r in resources],
    }

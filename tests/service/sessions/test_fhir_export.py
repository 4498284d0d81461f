"""The session's FHIR export validates against the fhir.resources models (R4B,
the R4-compatible release fhir.resources ships)."""
import pytest
from fhir.resources.R4B.appointment import Appointment
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.medicationadministration import MedicationAdministration
from fhir.resources.R4B.observation import Observation

from common.errors import NotFound, ValidationFailed
from tests.support.sessions import CHECKLIST, IV_PLAN, clinic_monday, clinic_time, discharge, iso

MODELS = {"Appointment": Appointment, "Encounter": Encounter, "MedicationAdministration": MedicationAdministration,
          "Observation": Observation}
MONDAY = clinic_monday()


def validated(bundle: dict) -> dict:
    """Each resource by id, after validating the Bundle and every resource."""
    Bundle.model_validate(bundle)
    assert bundle["type"] == "collection"
    for entry in bundle["entry"]:
        MODELS[entry["resource"]["resourceType"]].model_validate(entry["resource"])
    return {entry["resource"]["id"]: entry["resource"] for entry in bundle["entry"]}


def book(call, patient_id, chairs, clinicians, plan):
    plan = call("create_plan", {"patient_id": patient_id, **plan})
    return call("book_appointment", {"plan_id": plan["plan_id"], "starts_at": iso(clinic_time(MONDAY, 9)),
                                     "chair_id": chairs[0], "clinician_id": clinicians[0]})


def test_a_completed_iv_session_exports_as_valid_fhir(arrived, call, patient_id, chairs, clinicians):
    appointment = book(call, patient_id, chairs, clinicians, IV_PLAN)
    sid = call("check_in", arrived(appointment["appointment_id"]), CHECKLIST)["session_id"]
    call("start_session", sid, {"lot_number": "LOT-7"})
    alert = call("record_vitals", sid, {"systolic": 184, "diastolic": 96, "heart_rate": 88, "spo2": 97,
                                        "respiratory_rate": 12})
    call("record_vitals", sid, {"systolic": 126, "diastolic": 80, "heart_rate": 76, "spo2": 98})
    call("complete_session", sid, discharge())
    bundle = call("export_fhir", sid)
    resources = validated(bundle)
    kinds = [entry["resource"]["resourceType"] for entry in bundle["entry"]]
    # baseline (5 measures → 4 resources), the alert reading (4), the last (3)
    assert kinds == ["Appointment", "Encounter", "MedicationAdministration"] + ["Observation"] * 11

    booked = resources[appointment["appointment_id"]]
    assert (booked["status"], booked["start"]) == ("fulfilled", call("get_appointment", appointment["appointment_id"])["starts_at"])
    assert {"reference": f"Patient/{patient_id}"} in [p["actor"] for p in booked["participant"]]
    encounter = resources[sid]
    assert encounter["status"] == "finished" and encounter["class"]["code"] == "AMB"
    assert encounter["appointment"] == [{"reference": f"Appointment/{appointment['appointment_id']}"}]
    dose = resources[f"{sid}-dose"]
    assert dose["status"] == "completed" and dose["context"] == {"reference": f"Encounter/{sid}"}
    assert dose["dosage"]["dose"] == {"value": 35.0, "unit": "mg", "system": "http://unitsofmeasure.org",
                                      "code": "mg"}
    assert dose["dosage"]["route"]["coding"][0]["code"] == "47625008"
    medication = dose["contained"][0]
    assert medication["code"]["coding"][0]["code"] == "6130" and medication["batch"]["lotNumber"] == "LOT-7"
    assert set(dose["effectivePeriod"]) == {"start", "end"}

    bp = resources[f"{alert['reading_id']}-bp"]
    assert bp["code"]["coding"][0]["code"] == "85354-9"
    assert [(c["code"]["coding"][0]["code"], c["valueQuantity"]["value"]) for c in bp["component"]] == [
        ("8480-6", 184), ("8462-4", 96)]
    assert bp["component"][0]["interpretation"][0]["coding"][0]["code"] == "H"
    assert "interpretation" not in bp["component"][1]
    codes = {r["code"]["coding"][0]["code"]: r["valueQuantity"]["value"]
             for key, r in resources.items() if key.startswith(alert["reading_id"]) and "valueQuantity" in r}
    assert codes == {"8867-4": 88, "59408-5": 97, "9279-1": 12}
    for resource in resources.values():
        if resource["resourceType"] == "Observation":
            assert resource["subject"] == {"reference": f"Patient/{patient_id}"}
            assert resource["encounter"] == {"reference": f"Encounter/{sid}"}
    assert "MRN" not in str(bundle) and "dr.who" not in str(bundle)
    assert "fhir_export" in {e["action"] for e in call("list_record_access", patient_id)}


def test_an_undosed_esketamine_session_has_no_administration(arrived, call, patient_id, chairs, clinicians):
    call("record_rems_enrollment", patient_id, {"enrollment_id": "REMS-1", "enrolled_on": "2026-11-01"})
    appointment = book(call, patient_id, chairs, clinicians, {
        "route": "intranasal_esketamine", "indication": "major_depressive_disorder", "fixed_dose_mg": 84})
    sid = call("check_in", arrived(appointment["appointment_id"]), CHECKLIST)["session_id"]
    resources = validated(call("export_fhir", sid))
    assert [r["resourceType"] for r in resources.values()] == ["Appointment", "Encounter"] + ["Observation"] * 4
    assert resources[sid]["status"] == "arrived"
    assert resources[appointment["appointment_id"]]["status"] == "checked-in"

    call("start_session", sid, {"lot_number": "SPR-9"})
    resources = validated(call("export_fhir", sid))
    dose = resources[f"{sid}-dose"]
    assert dose["status"] == "in-progress" and dose["dosage"]["dose"]["value"] == 84.0
    assert dose["dosage"]["route"]["coding"][0]["code"] == "46713006"
    assert [c["system"] for c in dose["contained"][0]["code"]["coding"]] == ["urn:clinic:codes"]
    assert "end" not in dose["effectivePeriod"]

    call("abort_session", sid, {"reason_code": "patient_request", "note": "NOTE-THAT-STAYS-HOME"})
    bundle = call("export_fhir", sid)
    resources = validated(bundle)
    assert resources[f"{sid}-dose"]["status"] == "stopped" and "end" in resources[f"{sid}-dose"]["effectivePeriod"]
    assert resources[sid]["status"] == "finished"
    assert "NOTE-THAT-STAYS-HOME" not in str(bundle)


def test_bad_session_ids_are_refused(call):
    with pytest.raises(NotFound):
        call("export_fhir", "00000000-0000-0000-0000-000000000000")
    with pytest.raises(ValidationFailed):
        call("export_fhir", 42)

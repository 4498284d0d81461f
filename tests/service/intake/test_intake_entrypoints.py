"""Intake through its entrypoints, on the real broker and PostgreSQL."""
import pytest
import sqlalchemy as sa

from common.errors import Conflict, NotFound, ValidationFailed
from tests.support.calls import as_staff
from tests.support.intake import GAD7_MILD, HISTORY, PATIENT, PHQ9_MODERATE, approved_patient


@pytest.fixture
def call(intake):
    return as_staff(intake, "dr.who (clinician)")


def count(databases, table):
    with databases.engine("intake").connect() as connection:
        return connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_register_get_and_search(call, events):
    events.listen("intake")
    patient = call("register_patient", PATIENT)
    assert patient["mrn"].startswith("MRN")
    assert call("get_patient", patient["patient_id"])["family_name"] == "Lopez"
    found = call("find_patients", {"name": "lop"})
    assert found["total"] == 1 and found["items"][0]["patient_id"] == patient["patient_id"]
    assert call("find_patients", {"mrn": patient["mrn"]})["total"] == 1
    assert call("find_patients", {"date_of_birth": "1980-02-03"})["total"] == 1
    assert call("find_patients", {"name": "nobody"})["total"] == 0
    registered = events.wait_for("patient.registered")
    assert registered["producer"] == "intake"
    assert registered["data"]["patient_id"] == patient["patient_id"]
    assert set(registered) == {"event_id", "type", "version", "occurred_at", "producer", "correlation_id", "data"}


def test_search_is_paginated(call):
    for given in ("Ann", "Bea", "Cal"):
        call("register_patient", {**PATIENT, "given_name": given})
    page = call("find_patients", {"name": "lopez", "limit": 2, "offset": 0})
    assert (page["total"], len(page["items"])) == (3, 2)
    assert len(call("find_patients", {"name": "lopez", "limit": 2, "offset": 2})["items"]) == 1


def test_every_access_to_a_record_is_audited(call):
    patient = call("register_patient", PATIENT)
    call("get_patient", patient["patient_id"])
    trail = call("list_record_access", patient["patient_id"])
    assert [entry["action"] for entry in trail] == ["read", "create"]
    assert all(entry["actor"] == "dr.who (clinician)" for entry in trail)


@pytest.mark.parametrize("change, field", [
    ({"phone": "555-0123"}, "phone"),
    ({"email": "not-an-email"}, "email"),
    ({"date_of_birth": "2999-01-01"}, "date_of_birth"),
    ({"time_zone": "Mars/Olympus"}, "time_zone"),
    ({"sex": "x"}, "sex"),
    ({"weight_kg": -3}, "weight_kg"),
    ({"diagnosis_codes": ["depression"]}, "diagnosis_codes"),
    ({"favourite_colour": "blue"}, "favourite_colour"),
    ({"family_name": "A\u0000"}, "family_name"),
    ({"given_name": "An\u0007a"}, "given_name"),
])
def test_invalid_patient_fields_are_named_and_nothing_is_written(call, databases, change, field):
    with pytest.raises(ValidationFailed) as caught:
        call("register_patient", {**PATIENT, **change})
    assert field in {e["field"] for e in caught.value.details}
    assert count(databases, "patients") == 0
    assert count(databases, "outbox") == 0


def test_a_registration_retried_with_its_idempotency_key_makes_one_patient(intake, call, databases, events):
    events.listen("intake")
    first = call("register_patient", PATIENT, "reg-1")
    assert call("register_patient", {**PATIENT, "given_name": " Ana "}, "reg-1") == first
    assert count(databases, "patients") == 1 and count(databases, "outbox") == 1
    with pytest.raises(ValidationFailed, match="reg-1"):
        call("register_patient", {**PATIENT, "given_name": "Bea"}, "reg-1")
    # Another member of staff's key of the same spelling is theirs alone.
    other = as_staff(intake, "frontdesk (front_desk)")("register_patient", PATIENT, "reg-1")
    assert other["patient_id"] != first["patient_id"]
    assert count(databases, "patients") == 2


@pytest.mark.parametrize("field", ["given_name", "family_name", "date_of_birth", "sex", "time_zone",
                                   "primary_condition", "diagnosis_codes"])
def test_a_change_cannot_empty_a_field_every_patient_has(call, field):
    patient = call("register_patient", PATIENT)
    with pytest.raises(ValidationFailed) as caught:
        call("update_patient", patient["patient_id"], {field: None})
    assert [e["field"] for e in caught.value.details] == [field]
    assert call("get_patient", patient["patient_id"])[field] == patient[field]


def test_a_change_may_clear_contact_details(call):
    patient = call("register_patient", {**PATIENT, "email": "ana@example.org"})
    assert call("update_patient", patient["patient_id"], {"email": None, "phone": None})["email"] is None


def test_missing_fields_are_named(call):
    with pytest.raises(ValidationFailed) as caught:
        call("register_patient", {"given_name": "Ana"})
    assert {"family_name", "date_of_birth", "sex", "primary_condition"} <= {e["field"] for e in caught.value.details}


def test_unknown_patient(call):
    with pytest.raises(NotFound):
        call("get_patient", "00000000-0000-0000-0000-000000000000")


def test_consent_is_recorded_once_and_withdrawn(call, events):
    events.listen("intake")
    pid = call("register_patient", PATIENT)["patient_id"]
    first = call("record_consent", pid, {"kind": "sms", "method": "electronic"})
    again = call("record_consent", pid, {"kind": "sms", "method": "electronic"})
    assert first["consent_id"] == again["consent_id"]
    withdrawn = call("withdraw_consent", pid, {"kind": "sms"})
    assert withdrawn["status"] == "withdrawn"
    assert call("get_patient", pid)["consents"] == {"treatment": False, "sms": False, "email": False}
    last = events.wait_for("consent.recorded", where=lambda e: e["data"]["status"] == "withdrawn")
    assert last["data"]["kind"] == "sms"
    with pytest.raises(NotFound):
        call("withdraw_consent", pid, {"kind": "sms"})


def test_phq9_item9_raises_a_risk_flag(call, events):
    events.listen("intake")
    pid = call("register_patient", PATIENT)["patient_id"]
    result = call("submit_questionnaire", pid, {"instrument": "phq9", "answers": [0, 0, 0, 0, 0, 0, 0, 0, 1]})
    assert result["risk_flags"] == ["phq9_self_harm_thoughts"]
    flagged = events.wait_for("patient.risk_flagged")
    assert flagged["data"]["patient_id"] == pid
    assert "answers" not in flagged["data"]


def test_a_staff_entered_phq9_or_gad7_is_announced_as_scored_in_the_same_transaction(call, events, databases):
    events.listen("intake")
    pid = call("register_patient", PATIENT)["patient_id"]
    phq9 = call("submit_questionnaire", pid, {"instrument": "phq9", "answers": PHQ9_MODERATE}, "phq9-1")
    assert call("submit_questionnaire", pid, {"instrument": "phq9", "answers": PHQ9_MODERATE}, "phq9-1") == phq9
    call("submit_questionnaire", pid, {"instrument": "pcl5", "answers": [1] * 20})
    gad7 = call("submit_questionnaire", pid, {"instrument": "gad7", "answers": GAD7_MILD})
    announced = [events.wait_for("questionnaire.scored", count=n)["data"] for n in (1, 2)]
    assert announced[0] == {"patient_id": pid, "response_id": phq9["response_id"], "instrument": "phq9",
                            "total": phq9["total"], "band": phq9["band"], "completed_at": phq9["completed_at"],
                            "source": "staff"}
    assert (announced[1]["response_id"], announced[1]["instrument"]) == (gad7["response_id"], "gad7")
    with databases.engine("intake").connect() as connection:
        # Neither the replay nor the PCL-5 is announced.
        assert connection.execute(sa.text(
            "SELECT count(*) FROM outbox WHERE event_type = 'questionnaire.scored'")).scalar_one() == 2


def test_out_of_range_questionnaire_is_not_stored(call, databases):
    pid = call("register_patient", PATIENT)["patient_id"]
    with pytest.raises(ValidationFailed) as caught:
        call("submit_questionnaire", pid, {"instrument": "gad7", "answers": [0, 0, 0, 9, 0, 0, 0]})
    assert caught.value.details[0]["field"] == "answers.item4"
    assert count(databases, "questionnaire_responses") == 0


def test_full_intake_to_approval_emits_the_chain(call, events):
    events.listen("intake")
    patient = approved_patient(call)
    approved = events.wait_for("intake.approved")
    assert approved["data"]["patient_id"] == patient["patient_id"]
    assert approved["data"]["decided_by"] == "dr.who"
    assert approved["data"]["scores"]["phq9"]["total"] == sum(PHQ9_MODERATE)
    for kind in ("intake.submitted", "intake.screened"):
        assert events.wait_for(kind)["data"]["patient_id"] == patient["patient_id"]
    assert call("get_intake", patient["patient_id"])["status"] == "approved"


def test_a_declined_patient_cannot_be_approved(call):
    pid = call("register_patient", PATIENT)["patient_id"]
    call("record_consent", pid, {"kind": "treatment", "method": "written"})
    call("record_medical_history", pid, HISTORY)
    call("submit_questionnaire", pid, {"instrument": "phq9", "answers": PHQ9_MODERATE})
    call("submit_questionnaire", pid, {"instrument": "gad7", "answers": GAD7_MILD})
    call("submit_intake", pid)
    call("decline_intake", pid, {"reason": "prefers another treatment", "clinician": "dr.who"})
    with pytest.raises(Conflict):
        call("approve_intake", pid, {"reason": "changed my mind", "clinician": "dr.who"})
    assert call("get_intake", pid)["status"] == "declined"


def test_unscreened_or_ineligible_patients_cannot_be_approved(call):
    pid = call("register_patient", PATIENT)["patient_id"]
    with pytest.raises(Conflict):
        call("approve_intake", pid, {"reason": "looks fine", "clinician": "dr.who"})
    call("record_consent", pid, {"kind": "treatment", "method": "written"})
    call("record_medical_history", pid, {**HISTORY, "pregnant": True})
    call("submit_questionnaire", pid, {"instrument": "phq9", "answers": PHQ9_MODERATE})
    call("submit_questionnaire", pid, {"instrument": "gad7", "answers": GAD7_MILD})
    call("submit_intake", pid)
    screening = call("screen_patient", pid, {"systolic": 165, "diastolic": 90})
    assert screening["outcome"] == "ineligible"
    assert {r["code"] for r in screening["reasons"]} == {"pregnancy", "uncontrolled_hypertension"}
    with pytest.raises(Conflict):
        call("approve_intake", pid, {"reason": "looks fine", "clinician": "dr.who"})

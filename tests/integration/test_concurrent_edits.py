"""ETag and If-Match through the gateway: two front-desk staff editing one
patient, a plan changed meanwhile, an appointment cancelled from a stale
screen; the comparison is made by the service with the row locked."""
import pytest

from common.errors import PreconditionFailed
from services.notifications.service import NotificationsService
from tests.integration.test_sessions_flow import MONDAY, approved_in_sessions, resources
from tests.support.billing import concurrently, wait_until
from tests.support.intake import PATIENT
from tests.support.sessions import clinic_time, iso

FRONT = {"Authorization": "Bearer t-front"}
CLIN = {"Authorization": "Bearer t-clin"}


def test_two_front_desk_staff_editing_one_patient(clinic, databases):
    rpc, api = clinic
    pid = api.post("/api/v1/patients", json=PATIENT, headers=FRONT).json()["patient_id"]
    first_read = api.get(f"/api/v1/patients/{pid}", headers=FRONT)
    second_read = api.get(f"/api/v1/patients/{pid}", headers=FRONT)
    tag = first_read.headers["ETag"]
    assert tag == second_read.headers["ETag"]  # nothing changed between the reads

    first = api.patch(f"/api/v1/patients/{pid}", json={"phone": "+14155550199"}, headers={**FRONT, "If-Match": tag})
    assert first.status_code == 200, first.text
    second = api.patch(f"/api/v1/patients/{pid}", json={"email": "ana@example.org"},
                       headers={**FRONT, "If-Match": tag})
    assert second.status_code == 412, second.text
    assert second.headers["content-type"].startswith("application/problem+json")
    assert second.json()["code"] == "precondition_failed"

    now = api.get(f"/api/v1/patients/{pid}", headers=FRONT)
    assert now.headers["ETag"] != tag
    assert (now.json()["phone"], now.json()["email"]) == ("+14155550199", PATIENT.get("email"))
    retried = api.patch(f"/api/v1/patients/{pid}", json={"email": "ana@example.org"},
                        headers={**FRONT, "If-Match": now.headers["ETag"]})
    assert retried.status_code == 200, retried.text
    # Without If-Match the last write wins, as before.
    assert api.patch(f"/api/v1/patients/{pid}", json={"email": "a@example.org"}, headers=FRONT).status_code == 200


@pytest.mark.parametrize("header", ["not-a-tag", '"unterminated'])
def test_a_malformed_if_match_is_a_4xx_and_changes_nothing(clinic, header):
    rpc, api = clinic
    pid = api.post("/api/v1/patients", json=PATIENT, headers=FRONT).json()["patient_id"]
    before = api.get(f"/api/v1/patients/{pid}", headers=FRONT).headers["ETag"]
    answer = api.patch(f"/api/v1/patients/{pid}", json={"phone": "+14155550199"},
                       headers={**FRONT, "If-Match": header})
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "If-Match"
    assert api.get(f"/api/v1/patients/{pid}", headers=FRONT).headers["ETag"] == before


def test_racing_changes_with_one_tag_give_one_change_and_one_412(clinic, clinic_config):
    rpc, api = clinic
    pid = api.post("/api/v1/patients", json=PATIENT, headers=FRONT).json()["patient_id"]
    tag = api.get(f"/api/v1/patients/{pid}", headers=FRONT).headers["ETag"]
    results = concurrently(clinic_config, "update_patient",
                           [(pid, {"given_name": name}, [tag]) for name in ("Ann", "Bea", "Cal")],
                           actor="frontdesk (front_desk)", service="intake")
    assert sum(isinstance(result, dict) for result in results) == 1, results
    assert sum(isinstance(result, PreconditionFailed) for result in results) == 2, results


def test_plans_appointments_and_sessions_are_tagged_and_checked(clinic):
    rpc, api = clinic
    pid = approved_in_sessions(rpc, api)
    chair, _, clinician, _ = resources(api)
    plan = api.post("/api/v1/plans", json={"patient_id": pid, "route": "iv_infusion", "mg_per_kg": 0.5,
                                           "indication": "treatment_resistant_depression", "max_dose_mg": 60},
                    headers=CLIN).json()
    read = api.get(f"/api/v1/plans/{plan['plan_id']}", headers=CLIN)
    stale = read.headers["ETag"]
    assert api.patch(f"/api/v1/plans/{plan['plan_id']}", json={"max_dose_mg": 55},
                     headers={**CLIN, "If-Match": stale}).status_code == 200
    assert api.patch(f"/api/v1/plans/{plan['plan_id']}", json={"max_dose_mg": 50},
                     headers={**CLIN, "If-Match": stale}).status_code == 412
    assert api.get(f"/api/v1/plans/{plan['plan_id']}", headers=CLIN).json()["max_dose_mg"] == 55

    booked = api.post("/api/v1/appointments", headers=FRONT, json={
        "plan_id": plan["plan_id"], "starts_at": iso(clinic_time(MONDAY, 9)), "chair_id": chair,
        "clinician_id": clinician}).json()
    path = f"/api/v1/appointments/{booked['appointment_id']}"
    stale = api.get(path, headers=FRONT).headers["ETag"]
    moved = api.post(f"{path}/reschedule", json={"starts_at": iso(clinic_time(MONDAY, 11))},
                     headers={**FRONT, "If-Match": stale})
    assert moved.status_code == 200, moved.text
    cancelled = api.post(f"{path}/cancellation", headers={**FRONT, "If-Match": stale})
    assert cancelled.status_code == 412
    assert api.get(path, headers=FRONT).json()["status"] == "scheduled"
    current = api.get(path, headers=FRONT).headers["ETag"]
    assert api.post(f"{path}/cancellation", headers={**FRONT, "If-Match": current}).status_code == 200


def test_a_patient_s_notification_preferences_changed_meanwhile_are_not_undone(clinic, start_service):
    rpc, api = clinic
    start_service(NotificationsService)
    pid = api.post("/api/v1/patients", json=PATIENT, headers=FRONT).json()["patient_id"]
    path = f"/api/v1/patients/{pid}/notification-preferences"
    read = wait_until(lambda: (lambda answer: answer if answer.status_code == 200 else None)(
        api.get(path, headers=FRONT)), timeout=15)
    tag = read.headers["ETag"]
    assert api.get(path, headers=CLIN).headers["ETag"] == tag

    assert api.put(path, json={"sms": False}, headers={**FRONT, "If-Match": tag}).status_code == 200
    stale = api.put(path, json={"sms": True, "email": False}, headers={**CLIN, "If-Match": tag})
    assert stale.status_code == 412 and stale.json()["code"] == "precondition_failed"
    now = api.get(path, headers=CLIN)
    assert (now.json()["sms"]["enabled"], now.json()["email"]["enabled"]) == (False, True)
    assert api.put(path, json={"email": False}, headers={**CLIN, "If-Match": now.headers["ETag"]}).status_code == 200
    assert api.put(path, json={"sms": True}, headers={**CLIN, "If-Match": '"nothing-like-it"'}).status_code == 412
    # Without If-Match the last write wins, as before.
    assert api.put(path, json={"sms": True}, headers=FRONT).status_code == 200


def test_the_openapi_document_declares_etag_if_match_and_412(clinic):
    rpc, api = clinic
    document = api.get("/api/v1/openapi.json").json()
    read = document["paths"]["/api/v1/patients/{patient_id}"]["get"]
    assert "ETag" in read["responses"]["200"]["headers"]
    change = document["paths"]["/api/v1/patients/{patient_id}"]["patch"]
    assert "If-Match" in {parameter["name"] for parameter in change["parameters"]}
    assert "412" in change["responses"]
    preferences = document["paths"]["/api/v1/patients/{patient_id}/notification-preferences"]
    assert "ETag" in preferences["get"]["responses"]["200"]["headers"]
    assert "If-Match" in {parameter["name"] for parameter in preferences["put"]["parameters"]}
    assert "412" in preferences["put"]["responses"]

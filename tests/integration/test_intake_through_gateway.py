"""HTTP → gateway → RPC → intake → database → outbox → event on RabbitMQ,
and every kind of bad request answered with the right 4xx and no writes."""
import httpx
import pytest
import sqlalchemy as sa

from gateway.service import GatewayService
from services.intake.service import IntakeService
from tests.conftest import web_address
from tests.support.intake import GAD7_MILD, HISTORY, PATIENT, PHQ9_MODERATE

FRONT = {"Authorization": "Bearer t-front"}
CLIN = {"Authorization": "Bearer t-clin"}
ADMIN = {"Authorization": "Bearer t-admin"}


@pytest.fixture
def api(start_service):
    start_service(IntakeService)
    gateway = start_service(GatewayService)
    with httpx.Client(base_url=web_address(gateway), timeout=15) as client:
        yield client


def table_counts(databases):
    with databases.engine("intake").connect() as connection:
        return {table: connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
                for table in ("patients", "consents", "questionnaire_responses", "screenings", "outbox")}


def test_registration_reaches_the_bus_with_the_callers_correlation_id(api, events):
    events.listen("intake")
    answer = api.post("/api/v1/patients", json=PATIENT, headers={**FRONT, "X-Correlation-ID": "req-42"})
    assert answer.status_code == 201, answer.text
    patient = answer.json()
    event = events.wait_for("patient.registered")
    assert event["data"]["patient_id"] == patient["patient_id"]
    assert event["correlation_id"] == "req-42"
    assert answer.headers["X-Correlation-ID"] == "req-42"


def test_a_patient_goes_from_registration_to_approval_over_http(api, events):
    events.listen("intake")
    pid = api.post("/api/v1/patients", json=PATIENT, headers=FRONT).json()["patient_id"]
    for body in ({"kind": "treatment", "method": "written"}, {"kind": "sms", "method": "electronic"}):
        assert api.post(f"/api/v1/patients/{pid}/consents", json=body, headers=FRONT).status_code == 201
    assert api.put(f"/api/v1/patients/{pid}/medical-history", json=HISTORY, headers=CLIN).status_code == 200
    for instrument, answers in (("phq9", PHQ9_MODERATE), ("gad7", GAD7_MILD)):
        answer = api.post(f"/api/v1/patients/{pid}/questionnaires",
                          json={"instrument": instrument, "answers": answers}, headers=FRONT)
        assert answer.status_code == 201, answer.text
    assert api.post(f"/api/v1/patients/{pid}/intake/submission", headers=FRONT).json()["status"] == "submitted"
    screening = api.post(f"/api/v1/patients/{pid}/intake/screening", json={"systolic": 124, "diastolic": 82},
                         headers=CLIN).json()
    assert screening["outcome"] == "eligible"
    approval = api.post(f"/api/v1/patients/{pid}/intake/approval", json={"reason": "good candidate"}, headers=CLIN)
    assert approval.status_code == 200, approval.text
    assert approval.json()["decided_by"] == "dr.who"
    assert events.wait_for("intake.approved")["data"]["decided_by"] == "dr.who"
    log = api.get(f"/api/v1/patients/{pid}/access-log", headers=ADMIN).json()
    assert {"dr.who (clinician)", "frontdesk (front_desk)"} <= {entry["actor"] for entry in log["items"]}
    assert {entry["service"] for entry in log["items"]} == {"intake"}
    # Only intake runs here: the others are named, not waited for.
    assert log["unavailable_services"] == ["sessions", "billing", "notifications"]


def test_search_is_paginated_over_http(api):
    for given in ("Ann", "Bea", "Cal"):
        api.post("/api/v1/patients", json={**PATIENT, "given_name": given}, headers=FRONT)
    page = api.get("/api/v1/patients", params={"name": "lopez", "limit": 2}, headers=FRONT).json()
    assert (page["total"], len(page["items"]), page["limit"], page["offset"]) == (3, 2, 2, 0)


UNKNOWN = "00000000-0000-0000-0000-000000000000"


@pytest.mark.parametrize("method, path, kwargs, status, code", [
    ("post", "/api/v1/patients", {"content": b"{not json", "headers": FRONT}, 400, "malformed_request"),
    ("post", "/api/v1/patients", {"content": b"", "headers": FRONT}, 400, "malformed_request"),
    ("post", "/api/v1/patients", {"json": [1, 2], "headers": FRONT}, 422, "validation_failed"),
    ("post", "/api/v1/patients", {"json": {**PATIENT, "weight_kg": "heavy"}, "headers": FRONT}, 422,
     "validation_failed"),
    ("post", "/api/v1/patients", {"json": {"given_name": "Ana"}, "headers": FRONT}, 422, "validation_failed"),
    ("get", f"/api/v1/patients/{UNKNOWN}", {"headers": FRONT}, 404, "not_found"),
    ("post", f"/api/v1/patients/{UNKNOWN}/consents", {"json": {"kind": "sms", "method": "verbal"}, "headers": FRONT},
     404, "not_found"),
    ("post", "/api/v1/patients", {"json": PATIENT}, 401, "unauthorized"),
    ("post", "/api/v1/patients", {"json": PATIENT, "headers": {"Authorization": "Bearer nope"}}, 401, "unauthorized"),
    ("post", "/api/v1/patients", {"json": PATIENT, "headers": {"Authorization": "Basic dXNlcjpwdw=="}}, 401,
     "unauthorized"),
    ("post", "/api/v1/patients", {"json": PATIENT, "headers": {"Authorization": "Bearer t-bill"}}, 403, "forbidden"),
    ("get", "/api/v1/patients", {"params": {"limit": "lots"}, "headers": FRONT}, 422, "validation_failed"),
    ("get", "/api/v1/patients", {"params": {"limit": 1000}, "headers": FRONT}, 422, "validation_failed"),
    ("get", "/api/v1/no-such-thing", {"headers": FRONT}, 404, "not_found"),
    ("delete", "/api/v1/patients", {"headers": FRONT}, 405, "method_not_allowed"),
])
def test_bad_requests_get_the_right_problem_and_write_nothing(api, databases, method, path, kwargs, status, code):
    before = table_counts(databases)
    answer = getattr(api, method)(path, **kwargs)
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["status"] == status and problem["code"] == code and problem["detail"]
    assert "Traceback" not in answer.text
    assert table_counts(databases) == before


def test_clinical_decisions_need_a_clinician(api, databases):
    pid = api.post("/api/v1/patients", json=PATIENT, headers=FRONT).json()["patient_id"]
    before = table_counts(databases)
    for path, body in ((f"/api/v1/patients/{pid}/intake/approval", {"reason": "fine"}),
                       (f"/api/v1/patients/{pid}/intake/screening", {"systolic": 120, "diastolic": 80}),
                       (f"/api/v1/patients/{pid}/medical-history", HISTORY)):
        method = api.put if path.endswith("history") else api.post
        answer = method(path, json=body, headers=FRONT)
        assert answer.status_code == 403, answer.text
    assert table_counts(databases) == before


def test_illegal_state_moves_are_conflicts(api, databases):
    pid = api.post("/api/v1/patients", json=PATIENT, headers=FRONT).json()["patient_id"]
    before = table_counts(databases)
    answer = api.post(f"/api/v1/patients/{pid}/intake/approval", json={"reason": "fine"}, headers=CLIN)
    assert answer.status_code == 409
    answer = api.post(f"/api/v1/patients/{pid}/intake/submission", headers=FRONT)
    assert answer.status_code == 409
    assert {e["field"] for e in answer.json()["details"]} >= {"consents.treatment", "medical_history"}
    assert table_counts(databases) == before


def test_field_errors_name_the_field(api):
    answer = api.post("/api/v1/patients", json={**PATIENT, "phone": "12"}, headers=FRONT)
    assert answer.status_code == 422
    assert answer.json()["errors"] == [{"field": "phone", "message": answer.json()["errors"][0]["message"]}]
    pid = api.post("/api/v1/patients", json=PATIENT, headers=FRONT).json()["patient_id"]
    answer = api.post(f"/api/v1/patients/{pid}/questionnaires",
                      json={"instrument": "phq9", "answers": [0, 0, 0]}, headers=FRONT)
    assert answer.status_code == 422
    assert "answers.item4" in {e["field"] for e in answer.json()["errors"]}


def test_openapi_document_lists_the_routes(api):
    document = api.get("/api/v1/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    assert "post" in document["paths"]["/api/v1/patients"]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    payment = document["paths"]["/api/v1/invoices/{invoice_id}/payments"]["post"]
    assert "Idempotency-Key" in {p["name"] for p in payment["parameters"] if p["in"] == "header"}
    search = document["paths"]["/api/v1/patients"]["get"]
    assert all(p["in"] != "header" for p in search.get("parameters", []))


def test_an_overlong_idempotency_key_is_refused(api):
    answer = api.post("/api/v1/appointments", json={}, headers={**FRONT, "Idempotency-Key": "k" * 201})
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "Idempotency-Key"

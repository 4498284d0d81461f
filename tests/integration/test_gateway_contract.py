"""Every route the OpenAPI document lists, called the wrong way, answers
with a 4xx problem+json: never a 500, never a traceback, whatever the route."""
import re
import uuid

import httpx
import pytest

from gateway.service import GatewayService
from services.billing.service import BillingService
from services.intake.service import IntakeService
from services.notifications.service import NotificationsService
from services.sessions.service import SessionsService
from tests.conftest import web_address

ADMIN = {"Authorization": "Bearer t-admin"}
BAD_BODIES = [b"", b"{not json", b"[]", b"{}", b'{"unexpected_field": 1}', b'"a string"', b"null"]


@pytest.fixture
def api(start_service):
    for service in (IntakeService, SessionsService, BillingService, NotificationsService):
        start_service(service)
    gateway = start_service(GatewayService)
    with httpx.Client(base_url=web_address(gateway), timeout=30) as client:
        yield client


def operations(document):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield path, method.upper(), operation


def concrete(path: str) -> str:
    return re.sub(r"{\w+}", str(uuid.uuid4()), path)


def assert_problem(answer, allowed=range(400, 500)):
    assert answer.status_code in allowed, f"{answer.request.method} {answer.request.url}: " \
                                          f"{answer.status_code} {answer.text[:300]}"
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["status"] == answer.status_code and problem["detail"]
    assert "Traceback" not in answer.text


def test_every_route_refuses_a_missing_token(api):
    document = api.get("/api/v1/openapi.json").json()
    for path, method, _ in operations(document):
        assert_problem(api.request(method, concrete(path)), allowed=(401,))


def test_every_route_answers_bad_input_with_a_4xx(api):
    document = api.get("/api/v1/openapi.json").json()
    checked = 0
    for path, method, operation in operations(document):
        url = concrete(path)
        if "requestBody" in operation:
            for body in BAD_BODIES:
                answer = api.request(method, url, content=body,
                                     headers={**ADMIN, "Content-Type": "application/json"})
                assert_problem(answer)
                checked += 1
        else:
            # A live stream answers until told to stop: a one-second one.
            stream = {"max_seconds": "1"} if "text/event-stream" in operation["responses"].get("200", {}).get(
                "content", {}) else {}
            answer = api.request(method, url, headers=ADMIN, params={"limit": "many", "date": "someday", **stream})
            assert answer.status_code < 500, f"{method} {url}: {answer.status_code} {answer.text[:300]}"
            if answer.status_code >= 400:
                assert_problem(answer)
            checked += 1
    assert checked > 100


def test_the_access_log_merges_every_services_trail(api):
    front = {"Authorization": "Bearer t-front"}
    patient = {"given_name": "Ana", "family_name": "Lopez", "date_of_birth": "1980-02-03", "sex": "female",
               "primary_condition": "ptsd"}
    pid = api.post("/api/v1/patients", json=patient, headers=front).json()["patient_id"]
    api.get(f"/api/v1/patients/{pid}/balance", headers=front)
    log = api.get(f"/api/v1/patients/{pid}/access-log", headers=ADMIN).json()
    assert log["unavailable_services"] == []
    assert [(entry["service"], entry["action"]) for entry in log["items"]] == [
        ("billing", "read_balance"), ("intake", "create")]


# Creates of something that is not a record: a stream ticket is a one-use
# credential kept by the broker for a minute, and a retry simply gets another.
NOT_RECORDS = {"/api/v1/stream/tickets"}


def test_every_create_route_declares_the_idempotency_key(api):
    document = api.get("/api/v1/openapi.json").json()
    creates = [(path, operation) for path, method, operation in operations(document)
               if method == "POST" and "201" in operation["responses"] and path not in NOT_RECORDS]
    assert len(creates) >= 18
    for path, operation in creates:
        headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
        assert "Idempotency-Key" in headers, path


def test_a_registration_retried_with_its_idempotency_key_makes_one_patient(api):
    front = {"Authorization": "Bearer t-front", "Idempotency-Key": "reg-7f3a"}
    patient = {"given_name": "Ana", "family_name": "Lopez", "date_of_birth": "1980-02-03", "sex": "female",
               "primary_condition": "ptsd"}
    first = api.post("/api/v1/patients", json=patient, headers=front)
    retry = api.post("/api/v1/patients", json=patient, headers=front)
    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    other = api.post("/api/v1/patients", json={**patient, "given_name": "Bea"}, headers=front)
    assert_problem(other, allowed=(422,))
    assert "reg-7f3a" in other.json()["detail"]
    assert other.json()["errors"][0]["field"] == "idempotency_key"
    found = api.get("/api/v1/patients", params={"name": "lopez"}, headers=ADMIN).json()
    assert found["total"] == 1


def test_control_characters_anywhere_in_a_request_answer_422_naming_the_field(api):
    front = {"Authorization": "Bearer t-front"}
    patient = {"given_name": "Ana", "family_name": "A\u0000", "date_of_birth": "1980-02-03", "sex": "female",
               "primary_condition": "ptsd"}
    answer = api.post("/api/v1/patients", json=patient, headers=front)
    assert_problem(answer, allowed=(422,))
    assert answer.json()["errors"] == [{"field": "family_name", "message": answer.json()["errors"][0]["message"]}]
    answer = api.get("/api/v1/patients/abc%00def", headers=front)
    assert_problem(answer, allowed=(422,))
    assert answer.json()["errors"][0]["field"] == "patient_id"
    answer = api.get("/api/v1/patients", params={"name": "lo\u0000pez"}, headers=front)
    assert_problem(answer, allowed=(422,))
    assert answer.json()["errors"][0]["field"] == "name"
    # A correlation id that is not a plain token is replaced, not stored.
    answer = api.post("/api/v1/patients", json={**patient, "family_name": "Lopez"},
                      headers={**front, "X-Correlation-ID": "req\u0001-1"})
    assert answer.status_code == 201 and answer.headers["X-Correlation-ID"] != "req\u0001-1"


@pytest.mark.parametrize("field", ["given_name", "date_of_birth", "sex", "time_zone"])
def test_a_patient_change_to_null_answers_422_naming_the_field(api, field):
    front = {"Authorization": "Bearer t-front"}
    patient = {"given_name": "Ana", "family_name": "Lopez", "date_of_birth": "1980-02-03", "sex": "female",
               "primary_condition": "ptsd"}
    pid = api.post("/api/v1/patients", json=patient, headers=front).json()["patient_id"]
    answer = api.patch(f"/api/v1/patients/{pid}", json={field: None}, headers=front)
    assert_problem(answer, allowed=(422,))
    assert [e["field"] for e in answer.json()["errors"]] == [field]


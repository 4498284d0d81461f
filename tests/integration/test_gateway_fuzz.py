"""Property-based sweep of the whole HTTP API: schemathesis generates
requests from the OpenAPI document (bodies, query strings, headers; both
valid and deliberately invalid ones) for every route, sent with a valid
token of every role the route admits, at path ids that exist and at ones
that do not. Bad input must be answered with a 4xx: no answer is a 5xx.
Every answer must match the document: its status is declared, its body
validates against the declared schema (the output models' components, the
Problem) and its content type is the declared one.

Bounded to stay within the suite's budget: a fixed number of examples per
route and kind, derandomised so a run is repeatable. FUZZ_EXAMPLES raises
the count for a deeper run by hand (e.g. FUZZ_EXAMPLES=200 with --timeout
3600), FUZZ_RANDOM=1 draws other examples each time."""
import os
import re

import eventlet
import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from nameko.standalone.rpc import ClusterRpcProxy
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance, response_schema_conformance, status_code_conformance)

from gateway.http import ROUTES
from gateway.service import GatewayService
from services.billing.service import BillingService
from services.intake.service import IntakeService
from services.notifications.service import NotificationsService
from services.sessions.service import SessionsService
from tests.conftest import web_address
from tests.support.billing import wait_until
from tests.support.intake import approved_patient
from tests.support.sessions import CHECKLIST, clinic_monday, clinic_time, iso, move_to_today

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))
# FUZZ_RANDOM=1: other examples on each run (a deeper search by hand).
REPEATABLE = not os.environ.get("FUZZ_RANDOM")
TOKENS = {"front_desk": "t-front", "clinician": "t-clin", "billing": "t-bill", "admin": "t-admin"}


@pytest.fixture
def clinic(start_service, clinic_config):
    for service in (IntakeService, SessionsService, BillingService, NotificationsService):
        start_service(service)
    gateway = start_service(GatewayService)
    with ClusterRpcProxy(clinic_config, context_data={"actor": "dr.who (clinician)"}) as rpc, \
            httpx.Client(base_url=web_address(gateway), timeout=30) as api:
        yield rpc, api, web_address(gateway)


def as_role(role):
    return {"Authorization": f"Bearer {TOKENS[role]}"}


def created(answer) -> dict:
    assert answer.status_code in (200, 201), f"{answer.request.url}: {answer.status_code} {answer.text[:300]}"
    return answer.json()


def records_to_aim_at(rpc, api, databases) -> dict[str, str]:
    """One real record of every kind a path names, so generated requests
    reach the rules behind the lookups, not only "not found"."""
    pid = approved_patient(lambda method, *args: getattr(rpc.intake, method)(*args))["patient_id"]
    wait_until(lambda: api.get(f"/api/v1/patients/{pid}/eligibility", headers=as_role("front_desk")).json()
               .get("eligible"), timeout=30)
    admin, clinician, billing = as_role("admin"), as_role("clinician"), as_role("billing")
    chair = created(api.post("/api/v1/resources", json={"kind": "chair", "name": "Chair 1"}, headers=admin))
    doctor = created(api.post("/api/v1/resources", json={"kind": "clinician", "name": "Dr A"}, headers=admin))
    plan = created(api.post("/api/v1/plans", json={"patient_id": pid, "route": "iv_infusion",
                                                   "indication": "treatment_resistant_depression"}, headers=clinician))
    starts = clinic_time(clinic_monday(), 9)
    appointment = created(api.post("/api/v1/appointments", headers=clinician, json={
        "plan_id": plan["plan_id"], "starts_at": iso(starts), "chair_id": chair["resource_id"],
        "clinician_id": doctor["resource_id"]}))
    # Check-in belongs to the appointment's own day.
    move_to_today(databases.engine("sessions"), appointment["appointment_id"])
    session = created(api.post(f"/api/v1/appointments/{appointment['appointment_id']}/check-in",
                               json=CHECKLIST, headers=clinician))
    charge = created(api.post(f"/api/v1/patients/{pid}/charges",
                              json={"code": "99215", "date_of_service": "2026-11-20"}, headers=billing))
    package = created(api.post(f"/api/v1/patients/{pid}/packages", json={"code": "PKG-IV6"}, headers=billing))
    invoice = created(api.post(f"/api/v1/patients/{pid}/invoices", json={}, headers=billing))
    payment = created(api.post(f"/api/v1/invoices/{invoice['invoice_id']}/payments", headers=billing,
                               json={"amount_cents": 1000, "method": "cash"}))
    notification = wait_until(lambda: api.get("/api/v1/notifications", params={"patient_id": pid},
                                              headers=admin).json()["items"], timeout=30)[0]
    forms = api.get("/api/v1/monitoring-forms", params={"overdue": "false"}, headers=clinician).json()["items"]
    return {
        "patient_id": pid, "plan_id": plan["plan_id"], "appointment_id": appointment["appointment_id"],
        "session_id": session["session_id"], "charge_id": charge["charge_id"],
        "invoice_id": invoice["invoice_id"], "payment_id": payment["payment"]["payment_id"],
        "package_id": package["package_id"], "notification_id": notification["notification_id"],
        **({"form_id": forms[0]["form_id"]} if forms else {}),
    }


def roles_of(method: str, path: str) -> list[str]:
    [spec] = [r for r in ROUTES if (r.method, r.path) == (method.upper(), path)]
    return sorted(set(spec.roles) | {"admin"})


def one_second_stream(query) -> dict:
    """The live-update stream answers until ``max_seconds`` (or for ever):
    a generated request that would open a stream opens a one-second one, so
    its whole answer is still read and checked. Invalid values stay, to be
    refused."""
    query = dict(query or {})
    raw = query.get("max_seconds")
    if raw is None or isinstance(raw, list) or (str(raw).isdigit() and int(raw) >= 1):
        query["max_seconds"] = "1"
    return query


CONFORMANCE = [response_schema_conformance, content_type_conformance, status_code_conformance]


@pytest.mark.timeout(600)  # about a minute alone; the suite's 120 s would be tight on a busy machine
def test_no_generated_request_is_answered_with_a_server_error_and_every_answer_matches_the_document(clinic, databases):
    rpc, api, base_url = clinic
    ids = records_to_aim_at(rpc, api, databases)
    schema = schemathesis.openapi.from_dict(api.get("/api/v1/openapi.json").json())
    server_errors: list[str] = []
    nonconforming: dict[str, str] = {}
    sent = 0
    for found in schema.get_all_operations():
        operation = found.ok()
        names = re.findall(r"{(\w+)}", operation.path)
        real = {name: ids[name] for name in names if name in ids}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategies = [operation.as_strategy(generation_mode=mode)]
            if real:
                strategies.append(operation.as_strategy(generation_mode=mode, path_parameters=real))

            @settings(max_examples=EXAMPLES, derandomize=REPEATABLE, database=None, deadline=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            @given(case=st.one_of(strategies), role=st.sampled_from(roles_of(operation.method, operation.path)))
            def send(case, role):
                nonlocal sent
                if operation.path == "/api/v1/stream":
                    case.query = one_second_stream(case.query)
                response = case.call(base_url=base_url, headers=as_role(role), timeout=60)
                sent += 1
                if response.status_code >= 500:
                    server_errors.append(f"{response.status_code} {case.method} {case.formatted_path} as {role}: "
                                         f"{response.text[:200]}\n  {case.as_curl_command()}")
                else:
                    try:
                        case.validate_response(response, checks=CONFORMANCE)
                    except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collected per route and status
                        nonconforming.setdefault(f"{case.method} {operation.path} {response.status_code}",
                                                 f"{str(exc)[:600]}\n  {response.text[:300]}")
                eventlet.sleep(0)

            try:
                send()
            except Exception as exc:  # noqa: BLE001 - a route with nothing to make invalid
                if "negative" not in str(exc).lower() and type(exc).__name__ != "Unsatisfiable":
                    raise
    assert sent > len(ROUTES) * EXAMPLES
    assert server_errors == [], f"{len(server_errors)} of {sent} requests got a 5xx:\n" + "\n".join(server_errors[:20])
    assert nonconforming == {}, f"{len(nonconforming)} answers do not match the document:\n" + "\n".join(
        f"{where}: {why}" for where, why in list(nonconforming.items())[:20])

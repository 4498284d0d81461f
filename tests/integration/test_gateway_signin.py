"""Single sign-on through the gateway: the clinic's identity provider (a
stand-in with keys of the test's own) signs access tokens; roles come from
its claim; the user reaches the audit trail; only configured UI origins get
CORS answers."""
import httpx
import pytest

from gateway.service import GatewayService
from services.intake.service import IntakeService
from tests.conftest import web_address
from tests.support.identity_provider import IdentityProvider
from tests.support.intake import PATIENT

UI_ORIGIN = "https://desk.clinic.example"


@pytest.fixture
def idp():
    with IdentityProvider() as provider:
        yield provider


@pytest.fixture
def api(start_service, idp):
    start_service(IntakeService)
    gateway = start_service(GatewayService, GATEWAY_TOKENS="", CORS_ORIGINS=UI_ORIGIN,
                            OIDC_JWKS_REFRESH_SECONDS=0, **idp.config())
    with httpx.Client(base_url=web_address(gateway), timeout=15) as client:
        yield client


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_each_mapped_role_signs_in_and_the_user_reaches_the_audit_trail(api, idp):
    answer = api.post("/api/v1/patients", json=PATIENT, headers=bearer(idp.token(["desk"])))
    assert answer.status_code == 201, answer.text
    pid = answer.json()["patient_id"]
    for idp_role in ("doctor", "accounts"):
        assert api.get(f"/api/v1/patients/{pid}", headers=bearer(idp.token([idp_role]))).status_code == 200
    log = api.get(f"/api/v1/patients/{pid}/access-log", headers=bearer(idp.token(["it"], preferred_username="it.ops")))
    assert log.status_code == 200, log.text
    assert {"dr.grey (front_desk)", "dr.grey (clinician)", "dr.grey (billing)"} <= {
        entry["actor"] for entry in log.json()["items"]}


def test_roles_from_the_token_are_enforced(api, idp):
    answer = api.post("/api/v1/patients", json=PATIENT, headers=bearer(idp.token(["accounts"])))
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("change", [{"iss": "https://elsewhere.example"}, {"aud": "other"}, {"exp": 1}])
def test_tokens_from_elsewhere_or_expired_are_401(api, idp, change):
    answer = api.get("/api/v1/patients", headers=bearer(idp.token(["desk"], **change)))
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_token_without_a_clinic_role_is_403(api, idp):
    answer = api.get("/api/v1/patients", headers=bearer(idp.token(["visitor"])))
    assert answer.status_code == 403
    assert answer.json()["code"] == "forbidden"


def test_a_rotated_key_is_accepted_at_once(api, idp):
    assert api.get("/api/v1/patients", headers=bearer(idp.token(["desk"]))).status_code == 200
    new_key = idp.rotate()
    assert api.get("/api/v1/patients", headers=bearer(idp.token(["desk"], key=new_key))).status_code == 200


def test_static_development_tokens_are_off_unless_configured(api):
    assert api.get("/api/v1/patients", headers=bearer("t-front")).status_code == 401
    assert api.get("/api/v1/patients", headers=bearer("dev-front-desk")).status_code == 401


def test_only_the_configured_ui_origins_get_cors_answers(api, idp):
    ask = {"Origin": UI_ORIGIN, "Access-Control-Request-Method": "PATCH",
           "Access-Control-Request-Headers": "authorization, if-match"}
    preflight = api.options("/api/v1/patients/abc", headers=ask)
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
    assert "If-Match" in preflight.headers["Access-Control-Allow-Headers"]
    answer = api.get("/api/v1/patients", headers={**bearer(idp.token(["desk"])), "Origin": UI_ORIGIN})
    assert answer.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
    assert "ETag" in answer.headers["Access-Control-Expose-Headers"]

    stranger = "https://evil.example"
    assert api.options("/api/v1/patients", headers={**ask, "Origin": stranger}).status_code == 403
    answer = api.get("/api/v1/patients", headers={**bearer(idp.token(["desk"])), "Origin": stranger})
    assert "Access-Control-Allow-Origin" not in answer.headers

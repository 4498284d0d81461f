"""The staff console end to end in headless Chromium, against every service
on the real broker, signed in at the tests' identity provider (authorization
code flow with PKCE): the front desk registers a patient with the keyboard
alone and books a course; the day board shows each chair's sessions and
picks up a check-in live; a clinician opens a running session, records
vitals and sees the alert, and another device's alerting reading appears
without a reload; billing sees the open invoices and records a payment."""
import os
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from gateway.service import GatewayService
from services.billing.service import BillingService
from services.intake.service import IntakeService
from services.notifications.service import NotificationsService
from services.sessions.service import SessionsService
from tests.conftest import web_address
from tests.support.billing import wait_until
from tests.support.browser import chromium_path
from tests.support.console_browser import play
from tests.support.identity_provider import IdentityProvider
from tests.support.intake import GAD7_MILD, HISTORY, PHQ9_MODERATE, approved_patient
from tests.support.sessions import BASELINE, CHECKLIST, discharge, iso, move_to_today

pytestmark = pytest.mark.skipif(chromium_path() is None,
                                reason="no chromium found (apt-get install chromium, or set CHROMIUM_PATH)")

FRONT = {"Authorization": "Bearer t-front"}
CLIN = {"Authorization": "Bearer t-clin"}
BILL = {"Authorization": "Bearer t-bill"}
ADMIN = {"Authorization": "Bearer t-admin"}
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "images" / "day-board.png"


def midday_zone() -> str:
    """A clinic time zone in which it is about midday now, so that "today"
    and the next hours are one clinic day whenever the tests run."""
    offset = max(-12, min(14, 12 - datetime.now(timezone.utc).hour))
    # The Etc zones' signs are POSIX's: Etc/GMT-3 is three hours ahead of UTC.
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


@pytest.fixture
def clinic(start_service, clinic_config, smtp, sms):
    hours = {"time_zone": midday_zone(), "opens": "00:00", "closes": "23:59",
             "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}
    with IdentityProvider() as provider:
        start_service(IntakeService)
        start_service(SessionsService, SESSIONS=hours)
        start_service(BillingService)
        start_service(NotificationsService, NOTIFICATIONS={**smtp.config(), "SMS_URL": sms.url("/sms")})
        gateway = start_service(GatewayService, SESSIONS=hours, **provider.console_config())
        base = web_address(gateway)
        with ClusterRpcProxy(clinic_config, context_data={"actor": "dr.who (clinician)"}) as rpc, \
                httpx.Client(base_url=base, timeout=15) as api:
            yield {"rpc": rpc, "api": api, "gateway": base, "console": f"{base}/console/", "provider": provider,
                   "zone": hours["time_zone"]}


def post(api, path, headers, body=None, **extra):
    answer = api.post(f"/api/v1{path}", json=body, headers={**headers, **extra})
    assert answer.status_code in (200, 201), f"{path}: {answer.text}"
    return answer.json()


def approved(clinic, given_name: str, family_name: str = "Lopez") -> str:
    rpc, api = clinic["rpc"], clinic["api"]
    pid = approved_patient(lambda method, *args: getattr(rpc.intake, method)(*args),
                           patient={"given_name": given_name, "family_name": family_name})["patient_id"]
    wait_until(lambda: api.get(f"/api/v1/patients/{pid}/eligibility", headers=FRONT).json().get("eligible"),
               timeout=15)
    return pid


def resource(api, kind, name) -> str:
    return post(api, "/resources", ADMIN, {"kind": kind, "name": name})["resource_id"]


def booked_course(api, pid, chair, clinician, starts: datetime) -> list[dict]:
    plan = post(api, "/plans", CLIN, {"patient_id": pid, "route": "iv_infusion",
                                       "indication": "treatment_resistant_depression", "mg_per_kg": 0.5})
    return post(api, f"/plans/{plan['plan_id']}/course", FRONT,
                {"first_starts_at": iso(starts), "chair_id": chair, "clinician_id": clinician})["appointments"]


def in_days(days: int) -> datetime:
    return (datetime.now(timezone.utc) + timedelta(days=days)).replace(minute=0, second=0, microsecond=0)


def test_the_console_is_served_with_a_strict_policy_and_its_sign_in_settings(clinic):
    api = clinic["api"]
    page = api.get("/console/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "default-src 'none'" in policy and "unsafe" not in policy
    assert f"connect-src 'self' {clinic['provider'].issuer};" in policy
    assert "<script>" not in page.text and 'type="module" src="app.js"' in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer"
    script = api.get("/console/app.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    settings = api.get("/console/config.json").json()
    assert settings["oidc"] == {"issuer": clinic["provider"].issuer, "client_id": "clinic-console",
                                "scopes": "openid profile"}
    assert settings["clinic_time_zone"] == clinic["zone"] and settings["development_tokens"] is False
    assert api.get("/console/../service.py").status_code == 404
    assert api.get("/console/nothing.js").status_code == 404
    assert api.get("/console").headers["Location"] == "/console/"


def test_without_an_identity_provider_for_it_the_console_takes_a_development_token(start_service):
    gateway = start_service(GatewayService)  # GATEWAY_TOKENS only, as bin/run-clinic sets
    settings = httpx.get(f"{web_address(gateway)}/console/config.json", timeout=15).json()
    assert settings["oidc"] is None and settings["development_tokens"] is True
    seen = play("development_token", console=f"{web_address(gateway)}/console/", token="t-front")
    assert seen["page_errors"] == []
    assert (seen["heading"], seen["who"], seen["focused"]) == ("Front desk", "development token", "H1")


def test_front_desk_registers_a_patient_by_keyboard_alone_and_books_a_course(clinic):
    api = clinic["api"]
    seen = play("register_by_keyboard", console=clinic["console"])
    assert seen["page_errors"] == []
    # Focus order follows the form's reading order, every stop visibly marked.
    assert seen["order"] == ["given_name", "family_name", "date_of_birth", "sex", "phone", "email", "time_zone",
                             "primary_condition", "weight_kg", "diagnosis_codes"]
    assert all(seen["focus_visible"])
    # The sign-in page puts the focus on its heading: the button is the next stop or close.
    assert seen["sign_in_path"][-1] == "sign-in" and len(seen["sign_in_path"]) <= 2
    assert seen["focused_message"] and "Registered Nora Quinn, MRN" in seen["message"]
    [patient] = api.get("/api/v1/patients", params={"mrn": seen["mrn"]}, headers=FRONT).json()["items"]
    assert (patient["given_name"], patient["date_of_birth"], patient["sex"], patient["phone"], patient["weight_kg"],
            patient["primary_condition"], patient["diagnosis_codes"]) == (
        "Nora", "1979-04-12", "female", "+14155550142", 64, "treatment_resistant_depression", ["F33.2"])
    # The token came from the provider's code exchange, with the PKCE verifier.
    [exchange] = clinic["provider"].token_requests
    assert exchange["grant_type"] == "authorization_code" and len(exchange["code_verifier"]) >= 43

    # The clinician's part happens elsewhere: intake approved, a plan made.
    rpc = clinic["rpc"]
    pid = patient["patient_id"]
    for step in (("record_consent", pid, {"kind": "treatment", "method": "written"}),
                 ("record_medical_history", pid, HISTORY),
                 ("submit_questionnaire", pid, {"instrument": "phq9", "answers": PHQ9_MODERATE}),
                 ("submit_questionnaire", pid, {"instrument": "gad7", "answers": GAD7_MILD}),
                 ("submit_intake", pid), ("screen_patient", pid, {"systolic": 122, "diastolic": 78}),
                 ("approve_intake", pid, {"reason": "suitable", "clinician": "dr.who"})):
        getattr(rpc.intake, step[0])(*step[1:])
    wait_until(lambda: api.get(f"/api/v1/patients/{pid}/eligibility", headers=FRONT).json().get("eligible"),
               timeout=15)
    post(api, "/plans", CLIN, {"patient_id": pid, "route": "iv_infusion",
                               "indication": "treatment_resistant_depression", "mg_per_kg": 0.5})
    resource(api, "chair", "Chair 1")
    resource(api, "chair", "Chair 2")
    resource(api, "clinician", "Dr Adler")
    resource(api, "clinician", "Dr Baptiste")

    day = (datetime.now(timezone.utc) + timedelta(days=3)).date().isoformat()
    seen = play("book_course", console=clinic["console"], name="Nora Quinn", chair="Chair 2",
                clinician="Dr Baptiste", date=day, time="10:00–11:00")
    assert seen["page_errors"] == []
    assert seen["phone_error"] and "phone" in seen["summary"].lower()
    assert api.get("/api/v1/patients", params={"name": "Berg"}, headers=FRONT).json()["total"] == 0
    assert "Booked 6 sessions" in seen["message"] and len(seen["booked"]) == 6
    assert seen["booked"][0] == f"{day} 10:00"
    [plan] = api.get(f"/api/v1/patients/{pid}/plans", headers=FRONT).json()["items"]
    appointments = api.get(f"/api/v1/plans/{plan['plan_id']}/appointments", headers=FRONT).json()["items"]
    assert len(appointments) == 6 and {a["status"] for a in appointments} == {"scheduled"}


def test_day_board_live_and_a_clinician_sees_a_vitals_alert_without_reloading(clinic, databases, tmp_path):
    api = clinic["api"]
    chairs = [resource(api, "chair", f"Chair {n}") for n in (1, 2, 3, 4)]
    doctors = [resource(api, "clinician", name) for name in ("Dr Adler", "Dr Baptiste")]
    engine = databases.engine("sessions")
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    quarter = now - timedelta(minutes=now.minute % 15)
    today = {}
    for index, (given, family, chair, minutes) in enumerate((
            ("Ana", "Lopez", 0, -30), ("Ben", "Okafor", 1, -15), ("Chloe", "Nguyen", 2, 0), ("Dev", "Patel", 3, 15),
            ("Erin", "Walsh", 1, 75))):
        pid = approved(clinic, given, family)
        first = booked_course(api, pid, chairs[chair], doctors[index % 2], in_days(3) + timedelta(hours=index))[0]
        # Booked ahead, as the API only allows; moved to this morning.
        today[given] = move_to_today(engine, first["appointment_id"], quarter + timedelta(minutes=minutes))
    ben = post(api, f"/appointments/{today['Ben']}/check-in", FRONT, CHECKLIST)["session_id"]
    post(api, f"/sessions/{ben}/start", CLIN, {"lot_number": "KET-2026-11"})
    post(api, f"/sessions/{ben}/vitals", CLIN, BASELINE)
    post(api, f"/sessions/{ben}/completion", CLIN, discharge())
    ana = post(api, f"/appointments/{today['Ana']}/check-in", FRONT, CHECKLIST)["session_id"]
    post(api, f"/sessions/{ana}/start", CLIN, {"lot_number": "KET-2026-11"})
    post(api, f"/appointments/{today['Chloe']}/check-in", FRONT, CHECKLIST)

    shot = tmp_path / "day-board.png"
    seen = play("day_board_and_vitals", console=clinic["console"], gateway=clinic["gateway"],
                booked_appointment=today["Dev"], desk_token="t-front", clinician_token="t-clin",
                checklist=CHECKLIST, running_patient="Ana Lopez", running_session=ana, screenshot=str(shot))
    assert seen["page_errors"] == []
    states = {chair: [s.split(" | ")[1] for s in slots] for chair, slots in seen["board"].items()}
    assert states == {"Chair 1": ["In session"], "Chair 2": ["Completed", "Booked"], "Chair 3": ["Checked in"],
                      "Chair 4": ["Booked"]}
    assert [s.split(" | ")[1] for s in seen["after_check_in"]["Chair 4"]] == ["Checked in"]
    assert seen["session_heading"] == "Ana Lopez · session in progress"
    assert len(seen["own_alerts"]) == 1 and "systolic 186 (limit 180)" in seen["own_alerts"][0]
    assert len(seen["alerts"]) == 2 and "SpO₂ 89 (limit 92)" in seen["alerts"][1]
    # The baseline taken at check-in, then the two readings.
    assert seen["alert_region"] == "alert" and seen["vitals_rows"] == 3 and seen["not_reloaded"]
    assert "Vitals alert ×2" in seen["board_after"]["Chair 1"][0]
    assert shot.stat().st_size > 10_000
    # WRITE_CONSOLE_SCREENSHOT=1 refreshes the README's picture of the board.
    if os.environ.get("WRITE_CONSOLE_SCREENSHOT"):
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)


def test_billing_sees_open_invoices_and_records_a_payment(clinic):
    api = clinic["api"]
    pid = approved(clinic, "Erin", "Walsh")
    # The consultation charge is raised from intake's approval event.
    wait_until(lambda: api.get(f"/api/v1/patients/{pid}/charges", headers=BILL).json()["items"], timeout=20)
    invoice = post(api, f"/patients/{pid}/invoices", BILL, {})
    part = invoice["total_cents"] // 2
    seen = play("billing", console=clinic["console"], number=invoice["number"], part=f"{part / 100:.2f}")
    assert seen["page_errors"] == []
    assert "Erin Walsh" in seen["row"] and "issued" in seen["row"]
    assert f"Recorded ${part / 100:,.2f} by card on {invoice['number']}" in seen["message"]
    assert "partially paid" in seen["row_after"]
    assert "an amount such as 120.00" in seen["bad_amount"] and seen["invalid"] == "true"
    after = api.get(f"/api/v1/invoices/{invoice['invoice_id']}", headers=BILL).json()
    assert (after["paid_cents"], after["status"]) == (part, "partially_paid")
    [payment] = after["payments"]
    assert (payment["method"], payment["reference"], payment["recorded_by"]) == ("card", "ch_console_1", "bea.biller (billing)")

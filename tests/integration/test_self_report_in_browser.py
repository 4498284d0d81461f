"""Self-report end to end, in headless Chromium with JavaScript off: staff
ask through the gateway, the link arrives by email (and a neutral SMS), the
patient opens and answers it on the patient pages, intake scores and stores
it, and the risk item pages the on-duty staff. A reused or expired link gets
a plain-language page, not an error."""
import re
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa

from common.events import utcnow
from gateway.service import GatewayService
from patient_pages.service import PatientPagesService
from services.intake.service import IntakeService
from services.notifications.domain import treatment_words_in
from services.notifications.service import NotificationsService
from tests.conftest import web_address
from tests.support.browser import browse, chromium_path
from tests.support.calls import as_staff
from tests.support.intake import PATIENT
from tests.support.net import free_port

pytestmark = pytest.mark.skipif(chromium_path() is None,
                                reason="no chromium found (apt-get install chromium, or set CHROMIUM_PATH)")

CLIN = {"Authorization": "Bearer t-clin"}
LINK = re.compile(r"http://127\.0\.0\.1:\d+/f/[A-Za-z0-9_-]{43}")
STAFF = "oncall@clinic.example"


@pytest.fixture
def clinic(start_service, smtp, sms):
    pages_address = f"127.0.0.1:{free_port()}"
    self_report = {"PATIENT_PAGES_PUBLIC_URL": f"http://{pages_address}", "LINK_SECRET": "test-secret",
                   "CRISIS_RESOURCES": "In a crisis call or text 988 at any hour."}
    intake = start_service(IntakeService, SELF_REPORT=self_report)
    start_service(NotificationsService, SELF_REPORT=self_report, NOTIFICATIONS={
        **smtp.config(), "SMS_URL": sms.url("/sms"), "STAFF_ALERT_EMAILS": [STAFF], "SCHEDULER_INTERVAL": 0.2,
        "QUIET_HOURS_START": "00:00", "QUIET_HOURS_END": "00:00", "CLINIC_DISPLAY_NAME": "Harbor Wellness"})
    start_service(PatientPagesService, SELF_REPORT=self_report, WEB_SERVER_ADDRESS=pages_address)
    gateway = start_service(GatewayService)
    call = as_staff(intake, "frontdesk (front_desk)")
    patient = call("register_patient", PATIENT)
    for kind in ("email", "sms"):
        call("record_consent", patient["patient_id"], {"kind": kind, "method": "electronic"})
    with httpx.Client(base_url=web_address(gateway), timeout=15) as api:
        yield api, call, patient


def ask(api, patient_id, questionnaire):
    answer = api.post(f"/api/v1/patients/{patient_id}/self-report-requests",
                      json={"questionnaire": questionnaire}, headers=CLIN)
    assert answer.status_code == 201, answer.text
    return answer.json()


def link_in(message) -> str:
    found = LINK.findall(message.get_content())
    assert len(found) == 1
    return found[0]


def test_link_sent_opened_answered_scored_and_staff_paged(clinic, smtp, sms):
    api, call, patient = clinic
    pid = patient["patient_id"]
    ask(api, pid, "phq9")
    [email] = smtp.wait_for(1, timeout=20, where=lambda m: m["Subject"] == "A short check-in form is ready")
    link = link_in(email)
    sms.wait_for(2, path="/sms", timeout=20)  # the welcome, then the link
    [body] = [r.json()["body"] for r in sms.requests("/sms") if "check-in form" in r.json()["body"]]
    assert body == f"Harbor Wellness: a short check-in form is ready: {link}"
    for shown in (body, email["Subject"], link, email.get_content()):
        assert not treatment_words_in(shown) and "PHQ" not in shown.upper()

    seen = browse([{"goto": link}, {"choose": [1, 1, 1, 1, 0, 0, 0, 0, 1]}, {"submit": True}, {"goto": link}])
    opened, _, sent, reopened = seen
    assert opened["status"] == 200 and opened["radios"] == 36 and opened["labelled"] == 9
    assert "988" in opened["text"] and "Thoughts that you would be better off dead" in opened["text"]
    assert sent["status"] == 200 and "Thank you" in sent["text"] and "988" in sent["text"]
    assert reopened["status"] == 410 and "already been sent" in reopened["text"]

    [stored] = call("list_questionnaires", pid, "phq9")
    assert (stored["total"], stored["risk_flags"]) == (5, ["phq9_self_harm_thoughts"])
    [alert] = smtp.wait_for(1, timeout=20, where=lambda m: m["To"] == STAFF)
    assert alert["Subject"] == f"URGENT: risk flag for {patient['mrn']}"
    assert "phq9_self_harm_thoughts" in alert.get_content() and "Lopez" not in alert.get_content()
    assert api.get(f"/api/v1/patients/{pid}/self-report-requests", headers=CLIN).json()["items"][0]["used_at"]


def test_an_expired_link_and_a_made_up_one_get_a_plain_page(clinic, smtp, databases):
    api, call, patient = clinic
    ask(api, patient["patient_id"], "gad7")
    [email] = smtp.wait_for(1, timeout=20, where=lambda m: m["Subject"] == "A short check-in form is ready")
    link = link_in(email)
    with databases.engine("intake").begin() as connection:
        connection.execute(sa.text("UPDATE self_report_requests SET expires_at = :at"),
                           {"at": utcnow() - timedelta(minutes=1)})
    made_up = link[:-43] + "A" * 43
    expired, unknown, half = browse([{"goto": link}, {"goto": made_up}, {"goto": link[:-10]}])
    assert expired["status"] == 410 and "expired" in expired["text"] and "988" in expired["text"]
    assert unknown["status"] == 404 and "could not find this form" in unknown["text"]
    assert half["status"] == 404
    assert call("list_questionnaires", patient["patient_id"], "gad7") == []


def test_a_form_sent_with_a_question_unanswered_says_which(clinic, smtp):
    api, call, patient = clinic
    ask(api, patient["patient_id"], "gad7")
    [email] = smtp.wait_for(1, timeout=20, where=lambda m: m["Subject"] == "A short check-in form is ready")
    link = link_in(email)
    # Without JavaScript the browser still enforces "required"; a form sent
    # by hand with a gap is answered by the server.
    answer = httpx.post(link, data={"q1": "1", "q2": "2"}, timeout=15)
    assert answer.status_code == 422 and "question 3" in answer.text
    assert answer.headers["Referrer-Policy"] == "no-referrer" and answer.headers["Cache-Control"] == "no-store"
    assert call("list_questionnaires", patient["patient_id"], "gad7") == []
    _, _, sent = browse([{"goto": link}, {"choose": [0, 1, 0, 1, 0, 1, 0]}, {"submit": True}])
    assert sent["status"] == 200
    assert [s["total"] for s in call("list_questionnaires", patient["patient_id"], "gad7")] == [3]


def test_a_post_session_check_in_answered_in_the_browser_pages_staff_on_a_self_harm_yes(clinic, smtp, sms):
    api, call, patient = clinic
    pid = patient["patient_id"]
    ask(api, pid, "check_in")
    [email] = smtp.wait_for(1, timeout=20, where=lambda m: m["Subject"] == "A short check-in form is ready")
    link = link_in(email)
    for shown in (email["Subject"], link, email.get_content()):
        assert not treatment_words_in(shown) and "harm" not in shown.lower()

    # About the same, nausea still bothering, no dizziness, no confusion, and "yes" to self-harm thoughts.
    opened, _, sent, reopened = browse([{"goto": link}, {"choose": [1, 2, 0, 0, 1]}, {"submit": True},
                                        {"goto": link}])
    assert opened["status"] == 200 and opened["labelled"] == 5 and opened["radios"] == 3 * 4 + 2
    assert "How are you after your visit?" in opened["text"] and "still bothering me" in opened["text"]
    assert "988" in opened["text"]
    assert sent["status"] == 200 and "Thank you" in sent["text"] and "988" in sent["text"]
    assert reopened["status"] == 410

    [stored] = call("list_questionnaires", pid, "check_in")
    assert (stored["total"], stored["band"], stored["risk_flags"]) == (3, "urgent", ["check_in_self_harm"])
    [alert] = smtp.wait_for(1, timeout=20, where=lambda m: m["To"] == STAFF)
    assert alert["Subject"] == f"URGENT: risk flag for {patient['mrn']}"
    assert "check_in_self_harm" in alert.get_content() and "Lopez" not in alert.get_content()

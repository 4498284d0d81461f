"""The self-report schedule end to end on the real broker: a treatment plan
whose schedule sends the C-SSRS screener before each induction session; the
sessions timer announces it (``self_report.due``), intake makes the request,
notifications sends the link by SMS and email (naming no form, condition,
drug or score), the patient answers "yes" on the patient pages, and the
on-duty staff are paged."""
import re
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import sqlalchemy as sa
from nameko.standalone.rpc import ClusterRpcProxy

from patient_pages.service import PatientPagesService
from services.intake.service import IntakeService
from services.notifications.domain import treatment_words_in
from services.notifications.service import NotificationsService
from services.sessions.service import SessionsService
from tests.support.billing import wait_until
from tests.support.intake import approved_patient
from tests.support.net import free_port
from tests.support.sessions import clinic_monday, clinic_time, iso

LINK = re.compile(r"http://127\.0\.0\.1:\d+/f/[A-Za-z0-9_-]{43}")
STAFF = "oncall@clinic.example"
# Nothing an onlooker could read a form, a condition or a score from.
TELLING = ("phq", "gad", "ssrs", "columbia", "suicid", "self-harm", "harm", "depress", "anxi", "risk", "score",
           "check_in", "ketamine")


@pytest.fixture
def clinic(start_service, smtp, sms):
    pages_address = f"127.0.0.1:{free_port()}"
    self_report = {"PATIENT_PAGES_PUBLIC_URL": f"http://{pages_address}", "LINK_SECRET": "test-secret"}
    start_service(IntakeService, SELF_REPORT=self_report)
    start_service(SessionsService, SESSIONS={"self_report_scan_seconds": 0.3})
    start_service(NotificationsService, SELF_REPORT=self_report, NOTIFICATIONS={
        **smtp.config(), "SMS_URL": sms.url("/sms"), "STAFF_ALERT_EMAILS": [STAFF], "SCHEDULER_INTERVAL": 0.2,
        "QUIET_HOURS_START": "00:00", "QUIET_HOURS_END": "00:00", "CLINIC_DISPLAY_NAME": "Harbor Wellness"})
    start_service(PatientPagesService, SELF_REPORT=self_report, WEB_SERVER_ADDRESS=pages_address)


def test_the_schedule_sends_a_cssrs_before_a_session_and_a_yes_pages_staff(clinic, clinic_config, databases,
                                                                          events, smtp, sms):
    events.listen("sessions", "intake")
    with ClusterRpcProxy(clinic_config, context_data={"actor": "dr.who (clinician)"}) as rpc:
        patient = approved_patient(lambda method, *args: getattr(rpc.intake, method)(*args))
        pid = patient["patient_id"]
        wait_until(lambda: rpc.sessions.get_eligibility(pid).get("eligible"))
        chair = rpc.sessions.add_resource({"kind": "chair", "name": "Chair 1"})["resource_id"]
        clinician = rpc.sessions.add_resource({"kind": "clinician", "name": "Dr A"})["resource_id"]
        plan = rpc.sessions.create_plan({
            "patient_id": pid, "route": "iv_infusion", "indication": "treatment_resistant_depression",
            "self_report_schedule": {"before_induction": ["cssrs"], "weekly_in_maintenance": []}})
        appointment = rpc.sessions.book_appointment({
            "plan_id": plan["plan_id"], "starts_at": iso(clinic_time(clinic_monday(), 9)),
            "chair_id": chair, "clinician_id": clinician})
    # The session is tomorrow morning: within the day-before window.
    with databases.engine("sessions").begin() as connection:
        connection.execute(sa.text("UPDATE appointments SET starts_at = :at WHERE appointment_id = :id"),
                           {"at": datetime.now(timezone.utc) + timedelta(hours=20),
                            "id": appointment["appointment_id"]})

    due = events.wait_for("self_report.due", timeout=20)["data"]
    assert due == {"patient_id": pid, "plan_id": plan["plan_id"], "questionnaire": "cssrs",
                   "due_id": f"before:{appointment['appointment_id']}:cssrs"}
    requested = events.wait_for("self_report.requested", timeout=20)["data"]
    assert requested["patient_id"] == pid and "questionnaire" not in requested

    [email] = smtp.wait_for(1, timeout=20, where=lambda m: m["Subject"] == "A short check-in form is ready")
    link = LINK.findall(email.get_content())[0]
    wait_until(lambda: any(link in r.json()["body"] for r in sms.requests("/sms")), timeout=20)
    [body] = [r.json()["body"] for r in sms.requests("/sms") if link in r.json()["body"]]
    assert body == f"Harbor Wellness: a short check-in form is ready: {link}"
    for shown in (body, email["Subject"], link):
        assert not treatment_words_in(shown)
        assert not any(word in shown.lower() for word in TELLING), shown

    with httpx.Client(timeout=15) as browser:
        page = browser.get(link)
        assert page.status_code == 200 and "wished you were dead" in page.text and "988" in page.text
        sent = browser.post(link, data={"q1": "1", "q2": "0", "q3": "0", "q4": "0", "q5": "0", "q6": "0"})
        assert sent.status_code == 200 and "Thank you" in sent.text and "988" in sent.text
        assert browser.get(link).status_code == 410

    flagged = events.wait_for("patient.risk_flagged", timeout=20)["data"]
    assert (flagged["flags"], flagged["instrument"]) == (["cssrs_positive"], "cssrs")
    [alert] = smtp.wait_for(1, timeout=20, where=lambda m: m["To"] == STAFF)
    assert alert["Subject"] == f"URGENT: risk flag for {patient['mrn']}"
    assert "cssrs_positive" in alert.get_content() and "Lopez" not in alert.get_content()
    # However often the timer has run since, the occasion gave one link.
    assert len(events.events("self_report.due")) == 1
    assert len(events.events("self_report.requested")) == 1

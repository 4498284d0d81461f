"""Booking a six-session induction course through the gateway sends the
patient one confirmation per channel that lists every date, not six; each
appointment still gets its own reminders, and a later change its own
message. Sessions, notifications and the gateway on the real broker, with a
real SMTP server and an SMS provider stand-in."""
import re
import uuid

import httpx
import pytest
from nameko.testing.services import entrypoint_hook

from gateway.service import GatewayService
from services.notifications.service import NotificationsService
from services.sessions.service import SessionsService
from tests.conftest import web_address
from tests.support.events import publish_event
from tests.support.notifications import register_patient, wait_until
from tests.support.sessions import approval_data, clinic_monday, clinic_time, iso

FRONT = {"Authorization": "Bearer t-front"}
CLIN = {"Authorization": "Bearer t-clin"}
ADMIN = {"Authorization": "Bearer t-admin"}


@pytest.fixture
def clinic(start_service, smtp, sms):
    start_service(SessionsService)
    notifications = start_service(NotificationsService, NOTIFICATIONS={
        **smtp.config(), "SMS_URL": sms.url("/sms"), "QUIET_HOURS_START": "00:00", "QUIET_HOURS_END": "00:00",
        "CLINIC_DISPLAY_NAME": "Harbor Wellness", "SCHEDULER_INTERVAL": 0.2})
    gateway = start_service(GatewayService)
    with httpx.Client(base_url=web_address(gateway), timeout=15) as api:
        yield api, notifications


def test_a_booked_course_is_confirmed_in_one_message_listing_its_dates(clinic, clinic_config, smtp, sms):
    api, notifications = clinic
    amqp = clinic_config["AMQP_URI"]
    pid = str(uuid.uuid4())
    register_patient(amqp, pid)
    publish_event(amqp, "intake", "intake.approved", approval_data(pid))
    wait_until(lambda: api.get(f"/api/v1/patients/{pid}/eligibility", headers=FRONT).json().get("eligible"), 10,
               "sessions never saw the approval")
    # The welcome (one email, one SMS) first, so the count below is the course's alone.
    smtp.wait_for(1, timeout=15)
    sms.wait_for(1, "/sms", timeout=15)
    chair = api.post("/api/v1/resources", json={"kind": "chair", "name": "Chair 1"}, headers=ADMIN).json()
    clinician = api.post("/api/v1/resources", json={"kind": "clinician", "name": "Dr A"}, headers=ADMIN).json()
    plan = api.post("/api/v1/plans", headers=CLIN, json={
        "patient_id": pid, "route": "iv_infusion", "indication": "treatment_resistant_depression"}).json()

    booked = api.post(f"/api/v1/plans/{plan['plan_id']}/course", headers={**FRONT, "Idempotency-Key": "c-1"}, json={
        "first_starts_at": iso(clinic_time(clinic_monday(), 9)), "chair_id": chair["resource_id"],
        "clinician_id": clinician["resource_id"]})
    assert booked.status_code == 201, booked.text
    assert len(booked.json()["appointments"]) == 6

    emails = smtp.wait_for(2, timeout=15)
    texts = sms.wait_for(2, "/sms", timeout=15)
    # Room for any further confirmation to show up: none may.
    wait_until(lambda: len(api.get("/api/v1/notifications", headers=FRONT, params={
        "patient_id": pid, "kind": "appointment_reminder", "limit": 100}).json()["items"]) == 24, 10,
        "each appointment's reminders were not queued")
    with entrypoint_hook(notifications, "deliver_due") as sweep:
        sweep()
    emails, texts = smtp.messages(), sms.requests("/sms")
    assert len(emails) == 2 and len(texts) == 2
    [course_email] = [m for m in emails if m["Subject"] != "Welcome to Harbor Wellness"]
    assert course_email["Subject"] == "Your 6 appointments are booked"
    assert course_email["From"].startswith("Harbor Wellness <")
    body = course_email.get_content()
    # 09:00 in New York, 06:00 for the patient in Los Angeles.
    assert len(re.findall(r"^- \w+day \d+ \w+ at 6:00 AM P[SD]T$", body, re.MULTILINE)) == 6, body
    course_sms = texts[1].json()["body"]
    assert course_sms.startswith("Harbor Wellness: your 6 appointments are booked: Mon ")
    assert course_sms.count(" 6:00 AM") == 6 and re.search(r"\(P[SD]T\)", course_sms)
    log = api.get("/api/v1/notifications", headers=FRONT, params={"patient_id": pid, "limit": 100}).json()["items"]
    assert sorted(m["kind"] for m in log if m["status"] == "sent") == [
        "course_confirmation", "course_confirmation", "welcome", "welcome"]
    assert not [m for m in log if m["kind"] == "appointment_confirmation"]

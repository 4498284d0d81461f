"""Delivery end to end on the real broker, with a real SMTP server
(aiosmtpd in a subprocess) and a real HTTP server standing in for the SMS
provider, the webhook subscribers and the staff pager."""
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import REGISTRY
import sqlalchemy as sa
from nameko.testing.services import entrypoint_hook

from services.notifications.service import NotificationsService
from tests.support.events import publish_event, republish
from tests.support.notifications import (
    HttpReceiver, appointment_facts, iso_in, register_patient, wait_until,
)

EHR_SECRET = "ehr-shared-secret"


@pytest.fixture
def receiver():
    server = HttpReceiver(secrets={"/hooks/ehr": EHR_SECRET, "/hooks/staff": "pager-secret",
                                   "/hooks/stale": "the-secret-the-receiver-now-uses"}).start()
    yield server
    server.stop()


@pytest.fixture
def notifications(start_service, smtp, receiver):
    return start_service(NotificationsService, NOTIFICATIONS={
        **smtp.config(),
        "SMTP_FROM": "reminders@clinic.example",
        "SMS_URL": receiver.url("/sms"), "SMS_KEY": "sms-api-key",
        "WEBHOOKS": [
            {"name": "ehr", "url": receiver.url("/hooks/ehr"), "secret": EHR_SECRET,
             "events": ["appointment.scheduled", "appointment.cancelled"]},
            {"name": "stale", "url": receiver.url("/hooks/stale"), "secret": "an-old-secret",
             "events": ["appointment.scheduled"]},
        ],
        "STAFF_ALERT_EMAILS": ["oncall@clinic.example", "medical.director@clinic.example"],
        "STAFF_WEBHOOK": {"url": receiver.url("/hooks/staff"), "secret": "pager-secret"},
        "QUIET_HOURS_START": "00:00", "QUIET_HOURS_END": "00:00",  # the test must not depend on the hour
        "CLINIC_NAME": "Harbor Wellness", "CLINIC_PHONE": "+1 415 555 0100",
        "SCHEDULER_INTERVAL": 0.2, "RETRY_BASE_SECONDS": 0.2, "RETRY_CAP_SECONDS": 1, "MAX_ATTEMPTS": 30,
    })


@pytest.fixture
def amqp(clinic_config):
    return clinic_config["AMQP_URI"]


def rpc(container, method, *args):
    with entrypoint_hook(container, method) as hook:
        return hook(*args)


def known(container, pid, channels=("email", "sms")) -> None:
    """Wait until intake's events about the patient have been applied, as
    they would have been long before a booking in the clinic."""
    def ready():
        try:
            prefs = rpc(container, "get_preferences", pid)
        except Exception:
            return False
        return all(prefs[channel]["consented"] and prefs[channel]["address_on_record"] for channel in channels)
    wait_until(ready, 10, "the patient's consents were not applied")


def subjects(smtp, to="ana@example.com"):
    return sorted(m["Subject"] for m in smtp.messages() if m["To"] == to)


def sms_bodies(receiver):
    return [r.json()["body"] for r in receiver.requests("/sms")]


def statuses(container, **criteria):
    return {(m["kind"], m["channel"]): m["status"]
            for m in rpc(container, "list_messages", {"limit": 100, **criteria})["items"]}


def test_reminders_come_due_and_are_delivered_exactly_once(notifications, amqp, smtp, receiver, events):
    events.listen("notifications")
    pid = str(uuid.uuid4())
    register_patient(amqp, pid)
    known(notifications, pid)
    # Two hours and a few seconds ahead: the 2 h reminder falls due during
    # the test; the 48 h one was already past at booking.
    data = appointment_facts(pid, "appt-1", starts_in_seconds=2 * 3600 + 3)
    body = publish_event(amqp, "sessions", "appointment.scheduled", data)
    republish(amqp, body)  # RabbitMQ redelivers: still one of everything
    smtp.wait_for(3, where=lambda m: m["To"] == "ana@example.com", timeout=15)
    receiver.wait_for(3, "/sms", timeout=15)
    wait_until(lambda: statuses(notifications, appointment_id="appt-1").get(
        ("appointment_reminder", "sms")) == "sent", 10, "the SMS reminder was not recorded as sent")
    eventlet_sleep(1.0)  # room for any duplicate to show up
    kinds = sorted(subject.split(" ")[0] for subject in subjects(smtp))
    assert kinds == ["Reminder:", "Welcome", "Your"], subjects(smtp)
    # "today" unless the appointment, two hours on, falls on the patient's next day.
    starts_there = datetime.fromisoformat(data["starts_at"].replace("Z", "+00:00")).astimezone(
        ZoneInfo("America/Los_Angeles"))
    today_there = datetime.now(ZoneInfo("America/Los_Angeles")).date()
    assert ("Reminder: your appointment today" if starts_there.date() == today_there
            else f"Reminder: your appointment on {starts_there:%a %-d %b}") in subjects(smtp)
    bodies = sms_bodies(receiver)
    assert len(bodies) == 3 and sum(b.startswith("Harbor Wellness reminder:") for b in bodies) == 1
    request = receiver.requests("/sms")[0]
    assert request.headers["Authorization"] == "Bearer sms-api-key"
    assert request.json()["to"] == "+14155550123" and request.headers["Idempotency-Key"] == request.json()["reference"]
    assert len({r.json()["reference"] for r in receiver.requests("/sms")}) == 3
    # Booked two hours ahead: too late for the pre-visit text (fasting starts six hours before).
    assert statuses(notifications, appointment_id="appt-1") == {
        ("appointment_confirmation", "email"): "sent", ("appointment_confirmation", "sms"): "sent",
        ("appointment_reminder", "email"): "sent", ("appointment_reminder", "sms"): "sent",
        ("previsit_instructions", "sms"): "skipped"}
    sent = events.wait_for("notification.sent", count=6)
    assert sent["producer"] == "notifications" and set(sent["data"]) == {
        "notification_id", "kind", "channel", "recipient", "patient_id", "dedupe_key", "sent_at"}


def test_a_cancelled_appointments_reminders_are_never_sent(notifications, amqp, smtp, receiver):
    pid = str(uuid.uuid4())
    register_patient(amqp, pid, consents=("email",))
    known(notifications, pid, ("email",))
    data = appointment_facts(pid, "appt-2", starts_in_seconds=2 * 3600 + 2)
    publish_event(amqp, "sessions", "appointment.scheduled", data)
    smtp.wait_for(1, where=lambda m: "booked" in m["Subject"])
    publish_event(amqp, "sessions", "appointment.cancelled", {
        "patient_id": pid, "appointment_id": "appt-2", "starts_at": data["starts_at"], "cancelled_at": iso_in(0),
        "late": True, "cancelled_by_role": "front_desk"})
    smtp.wait_for(1, where=lambda m: "cancelled" in m["Subject"])
    eventlet_sleep(3.5)  # past the moment the 2 h reminder was due
    assert not [s for s in subjects(smtp) if s.startswith("Reminder")]
    assert statuses(notifications, appointment_id="appt-2")[("appointment_reminder", "email")] == "cancelled"
    assert statuses(notifications, appointment_id="appt-2")[("appointment_reminder", "sms")] == "cancelled"


def delivery_count(channel, kind, outcome):
    return REGISTRY.get_sample_value("clinic_notifications_total", {
        "service": "notifications", "channel": channel, "kind": kind, "outcome": outcome}) or 0


def test_smtp_down_for_a_while_is_retried_and_delivered_once_back(notifications, amqp, smtp, databases):
    counted_before = {outcome: delivery_count("email", "invoice_issued", outcome)
                      for outcome in ("failed", "retrying", "sent")}
    pid = str(uuid.uuid4())
    register_patient(amqp, pid, consents=())  # no welcome in the way
    smtp.stop()
    publish_event(amqp, "intake", "consent.recorded", {
        "patient_id": pid, "consent_id": "c-email", "kind": "email", "status": "granted", "effective_at": iso_in(0)})
    known(notifications, pid, ("email",))
    publish_event(amqp, "billing", "invoice.issued", {
        "patient_id": pid, "invoice_id": "inv-1", "number": "INV-000042", "total_cents": 45000, "currency": "USD",
        "due_date": "2026-12-31", "issued_at": iso_in(0)})

    def attempts():
        with databases.engine("notifications").connect() as connection:
            return connection.execute(sa.text(
                "SELECT min(attempts) FROM messages WHERE patient_id = :p AND channel = 'email'"), {"p": pid}
            ).scalar()

    wait_until(lambda: (attempts() or 0) >= 3, 15, "the messages were not retried while SMTP was down")
    assert smtp.messages() == []
    smtp.start()
    arrived = smtp.wait_for(2, timeout=15)
    eventlet_sleep(1.5)
    assert sorted(m["Subject"] for m in smtp.messages()) == ["Invoice INV-000042 from Harbor Wellness",
                                                             "Welcome to Harbor Wellness"]
    assert len(arrived) == 2
    invoice = next(m for m in rpc(notifications, "list_messages", {"patient_id": pid})["items"]
                   if m["kind"] == "invoice_issued" and m["channel"] == "email")
    log = rpc(notifications, "get_message", invoice["notification_id"])["log"]
    steps = [entry["status"] for entry in log]
    assert steps[0] == "queued" and steps[-1] == "sent"
    assert steps.count("failed") >= 3 and "retrying" in steps and "dead" not in steps
    assert all("SMTP unreachable" in e["detail"] for e in log if e["status"] == "failed")
    # The delivery counters operators scrape saw the same story.
    for outcome in ("failed", "retrying", "sent"):
        assert delivery_count("email", "invoice_issued", outcome) > counted_before[outcome]


def test_webhooks_are_signed_and_a_bad_signature_is_refused(notifications, amqp, receiver):
    pid = str(uuid.uuid4())
    body = publish_event(amqp, "sessions", "appointment.scheduled",
                         appointment_facts(pid, "appt-3", starts_in_seconds=86400 * 5))
    [delivery] = receiver.wait_for(1, "/hooks/ehr")
    assert delivery.verified is True
    assert delivery.json()["event_id"] == body["event_id"] and delivery.json()["data"] == body["data"]
    assert delivery.headers["X-Clinic-Event-Type"] == "appointment.scheduled"
    # The subscriber whose secret no longer matches answers 401: a
    # permanent failure, dead at once and listed for staff.
    receiver.wait_for(1, "/hooks/stale")
    wait_until(lambda: rpc(notifications, "list_dead_messages", 20, 0)["total"] == 1, 10, "no dead webhook")
    [dead] = rpc(notifications, "list_dead_messages", 20, 0)["items"]
    assert (dead["channel"], dead["target"], dead["attempts"]) == ("webhook", "stale", 1)
    assert "401" in dead["last_error"]
    assert len(receiver.requests("/hooks/ehr")) == 1


def test_a_vitals_alert_reaches_staff_at_once_by_mrn(notifications, amqp, smtp, receiver):
    publish_event(amqp, "sessions", "session.vitals_alert", {
        "patient_id": "p-7", "session_id": "s-7", "mrn": "MRN0000007", "chair_id": "chair-3",
        "clinician_id": "dr.who", "recorded_at": iso_in(0),
        "alerts": [{"code": "spo2_low", "measure": "spo2", "value": 89, "threshold": 92}]})
    [email] = smtp.wait_for(1, where=lambda m: "vitals" in m["Subject"], timeout=5)
    assert email["Subject"] == "URGENT: vitals alert for MRN0000007, chair chair-3"
    assert "oncall@clinic.example" in email["To"] and "medical.director@clinic.example" in email["To"]
    [page] = receiver.wait_for(1, "/hooks/staff", timeout=5)
    assert page.verified and page.json()["mrn"] == "MRN0000007" and page.json()["kind"] == "staff_vitals_alert"


def eventlet_sleep(seconds):
    import eventlet

    eventlet.sleep(seconds)


def test_withdrawing_consent_stops_messages_at_once(notifications, amqp, smtp, receiver):
    pid = str(uuid.uuid4())
    register_patient(amqp, pid)
    known(notifications, pid)
    publish_event(amqp, "intake", "consent.recorded", {
        "patient_id": pid, "consent_id": "c-sms", "kind": "sms", "status": "withdrawn", "effective_at": iso_in(0)})
    wait_until(lambda: not rpc(notifications, "get_preferences", pid)["sms"]["consented"], 10,
               "the withdrawal was not applied")
    publish_event(amqp, "billing", "payment.received", {
        "patient_id": pid, "payment_id": "pay-1", "invoice_id": "inv-1", "amount_cents": 2500, "currency": "USD",
        "method": "card", "received_at": iso_in(0)})
    smtp.wait_for(1, where=lambda m: m["Subject"].startswith("Receipt"))
    wait_until(lambda: statuses(notifications, patient_id=pid).get(("payment_receipt", "sms")) == "skipped", 10,
               "the receipt SMS was not skipped")
    assert not any("payment" in body for body in sms_bodies(receiver))


def test_a_provider_error_is_retried_and_an_unconfigured_sms_provider_is_dead_with_a_clear_error(
        start_service, amqp, smtp, receiver):
    receiver.fail_next = 2
    container = start_service(NotificationsService, NOTIFICATIONS={
        **smtp.config(), "QUIET_HOURS_START": "00:00", "QUIET_HOURS_END": "00:00",
        "SCHEDULER_INTERVAL": 0.2, "RETRY_BASE_SECONDS": 0.2, "RETRY_CAP_SECONDS": 0.5,
        "STAFF_WEBHOOK": {"url": receiver.url("/hooks/staff"), "secret": "pager-secret"}})
    publish_event(amqp, "intake", "patient.risk_flagged", {
        "patient_id": "p-8", "mrn": "MRN0000008", "flags": ["cssrs_positive"], "instrument": "cssrs",
        "band": "positive", "response_id": "resp-8"})
    receiver.wait_for(3, "/hooks/staff")
    wait_until(lambda: statuses(container, kind="staff_risk_alert") == {("staff_risk_alert", "staff_webhook"): "sent"},
               10, "the staff page was not delivered after the provider recovered")
    assert [r.headers["X-Clinic-Delivery"] for r in receiver.requests("/hooks/staff")].count(
        receiver.requests("/hooks/staff")[0].headers["X-Clinic-Delivery"]) == 3  # one message, three tries
    # No staff email list here, only the webhook: no email row at all.
    pid = str(uuid.uuid4())
    register_patient(amqp, pid, consents=("sms",))
    wait_until(lambda: statuses(container, patient_id=pid).get(("welcome", "sms")) == "dead", 10,
               "the SMS without a provider did not go dead")
    [dead] = rpc(container, "list_dead_messages", 20, 0)["items"]
    assert dead["last_error"] == "SMS provider not configured (NOTIFICATIONS.SMS_URL is unset)"
    # Dead at the first real attempt, not after MAX_ATTEMPTS (one earlier
    # attempt may have found the patient's details not applied yet).
    assert dead["attempts"] <= 2

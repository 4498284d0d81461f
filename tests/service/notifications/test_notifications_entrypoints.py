"""Notifications through its event handlers and RPC methods, on the real
broker and PostgreSQL. Delivery is switched off here (the scheduler's first
sweep is an hour away) so each test sees exactly what was queued; delivery
to real servers is in tests/integration/test_notifications_delivery.py."""
import logging
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from nameko.testing.services import entrypoint_hook, entrypoint_waiter

from common.errors import Conflict, NotFound, ValidationFailed
from services.notifications.service import NotificationsService
from tests.support.events import publish_event, republish
from tests.support.notifications import appointment_facts, iso_in, register_patient

NO_QUIET_HOURS = {"QUIET_HOURS_START": "00:00", "QUIET_HOURS_END": "00:00"}


@pytest.fixture
def start_notifications(start_service):
    def start(**section):
        return start_service(NotificationsService, NOTIFICATIONS={
            "SCHEDULER_INTERVAL": 3600, **NO_QUIET_HOURS, **section})
    return start


@pytest.fixture
def notifications(start_notifications):
    return start_notifications()


def deliver(container, handler, amqp, producer, event_type, data, **kw):
    with entrypoint_waiter(container, handler, timeout=10):
        return publish_event(amqp, producer, event_type, data, **kw)


def patient(container, amqp, consents=("email", "sms"), **facts):
    pid = str(uuid.uuid4())
    with entrypoint_waiter(container, "on_patient_registered", timeout=10):
        register_patient(amqp, pid, consents=(), **facts)
    for kind in consents:
        deliver(container, "on_consent_recorded", amqp, "intake", "consent.recorded",
                {"patient_id": pid, "consent_id": f"c-{kind}", "kind": kind, "status": "granted",
                 "effective_at": iso_in(0)})
    return pid


def messages(call, **criteria):
    return call("list_messages", {"limit": 100, **criteria})["items"]


def keys(items):
    return sorted(m["dedupe_key"].split(":", 1)[1] if "@" not in m["dedupe_key"] else
                  m["dedupe_key"].split("/", 1)[-1] for m in items)


def test_consents_build_the_read_model_and_each_queues_one_welcome(notifications, amqp, call):
    pid = patient(notifications, amqp)
    prefs = call("get_preferences", pid)
    assert prefs["email"] == {"consented": True, "enabled": True, "address_on_record": True}
    assert prefs["sms"]["consented"] and prefs["time_zone"] == "America/Los_Angeles"
    welcome = messages(call, patient_id=pid)
    assert sorted((m["kind"], m["channel"], m["status"]) for m in welcome) == [
        ("welcome", "email", "queued"), ("welcome", "sms", "queued")]
    # Re-confirming a consent does not welcome the patient again.
    deliver(notifications, "on_consent_recorded", amqp, "intake", "consent.recorded",
            {"patient_id": pid, "consent_id": "c-email", "kind": "email", "status": "granted", "effective_at": iso_in(0)})
    assert len(messages(call, patient_id=pid)) == 2


def test_the_newest_consent_fact_wins_whatever_the_arrival_order(notifications, amqp, call):
    pid = patient(notifications, amqp, consents=())
    deliver(notifications, "on_consent_recorded", amqp, "intake", "consent.recorded",
            {"patient_id": pid, "consent_id": "c1", "kind": "sms", "status": "withdrawn", "effective_at": iso_in(0)},
            occurred_at=iso_in(0))
    deliver(notifications, "on_consent_recorded", amqp, "intake", "consent.recorded",
            {"patient_id": pid, "consent_id": "c1", "kind": "sms", "status": "granted", "effective_at": iso_in(-60)},
            occurred_at=iso_in(-60))
    assert call("get_preferences", pid)["sms"]["consented"] is False
    assert messages(call, patient_id=pid) == []


def test_an_older_patient_update_does_not_overwrite_a_newer_one(notifications, amqp, call, databases):
    pid = patient(notifications, amqp)
    deliver(notifications, "on_patient_updated", amqp, "intake", "patient.updated",
            {"patient_id": pid, "mrn": "MRN0000042", "given_name": "Ana", "phone": None, "email": "old@example.com",
             "time_zone": "America/Chicago", "changed": ["email"]}, occurred_at=iso_in(-3600))
    assert call("get_preferences", pid)["time_zone"] == "America/Los_Angeles"


def test_scheduling_queues_a_confirmation_and_reminders_once_even_if_delivered_twice(notifications, amqp, call):
    pid = patient(notifications, amqp)
    data = appointment_facts(pid, "appt-1", starts_in_seconds=3 * 86400)
    body = deliver(notifications, "on_appointment_scheduled", amqp, "sessions", "appointment.scheduled", data)
    with entrypoint_waiter(notifications, "on_appointment_scheduled", timeout=10):
        republish(amqp, body)
    # The same facts under a new event id (a replay by the producer) add nothing either.
    deliver(notifications, "on_appointment_scheduled", amqp, "sessions", "appointment.scheduled", data)
    queued = messages(call, appointment_id="appt-1")
    assert sorted((m["kind"], m["channel"]) for m in queued) == [
        ("appointment_confirmation", "email"), ("appointment_confirmation", "sms"),
        ("appointment_reminder", "email"), ("appointment_reminder", "email"),
        ("appointment_reminder", "sms"), ("appointment_reminder", "sms"), ("previsit_instructions", "sms")]
    starts = datetime.fromisoformat(data["starts_at"].replace("Z", "+00:00"))
    due = sorted({m["due_at"] for m in queued if m["kind"] == "appointment_reminder"})
    assert due == [(starts - timedelta(hours=h)).isoformat().replace("+00:00", "Z") for h in (48, 2)]


def test_cancelling_cancels_the_reminders_and_tells_the_patient(notifications, amqp, call):
    pid = patient(notifications, amqp)
    data = appointment_facts(pid, "appt-2", starts_in_seconds=3 * 86400)
    deliver(notifications, "on_appointment_scheduled", amqp, "sessions", "appointment.scheduled", data)
    deliver(notifications, "on_appointment_cancelled", amqp, "sessions", "appointment.cancelled", {
        "patient_id": pid, "appointment_id": "appt-2", "starts_at": data["starts_at"], "cancelled_at": iso_in(0),
        "late": False, "cancelled_by_role": "front_desk"})
    by_kind = {}
    for m in messages(call, appointment_id="appt-2"):
        by_kind.setdefault(m["kind"], set()).add(m["status"])
    assert by_kind == {"appointment_confirmation": {"cancelled"}, "appointment_reminder": {"cancelled"},
                       "previsit_instructions": {"cancelled"}, "appointment_cancelled": {"queued"}}
    reminder = next(m for m in messages(call, appointment_id="appt-2") if m["kind"] == "appointment_reminder")
    assert [e["status"] for e in call("get_message", reminder["notification_id"])["log"]] == ["queued", "cancelled"]


def test_a_cancellation_arriving_before_the_booking_leaves_nothing_to_send(notifications, amqp, call):
    pid = patient(notifications, amqp)
    data = appointment_facts(pid, "appt-3", starts_in_seconds=3 * 86400)
    deliver(notifications, "on_appointment_cancelled", amqp, "sessions", "appointment.cancelled", {
        "patient_id": pid, "appointment_id": "appt-3", "starts_at": data["starts_at"], "cancelled_at": iso_in(0),
        "late": False, "cancelled_by_role": "front_desk"}, occurred_at=iso_in(0))
    deliver(notifications, "on_appointment_scheduled", amqp, "sessions", "appointment.scheduled", data,
            occurred_at=iso_in(-60))
    assert {m["kind"] for m in messages(call, appointment_id="appt-3")} == {"appointment_cancelled"}


def test_moving_an_appointment_moves_its_reminders(notifications, amqp, call):
    pid = patient(notifications, amqp)
    data = appointment_facts(pid, "appt-4", starts_in_seconds=3 * 86400)
    deliver(notifications, "on_appointment_scheduled", amqp, "sessions", "appointment.scheduled", data)
    new_start = iso_in(4 * 86400)
    deliver(notifications, "on_appointment_rescheduled", amqp, "sessions", "appointment.rescheduled", {
        **{k: data[k] for k in ("patient_id", "appointment_id", "route", "chair_id", "clinician_id")},
        "previous_starts_at": data["starts_at"], "starts_at": new_start, "ends_at": iso_in(4 * 86400 + 3600)})
    live = [m for m in messages(call, appointment_id="appt-4") if m["status"] == "queued"]
    assert sorted(m["kind"] for m in live) == (["appointment_moved"] * 2 + ["appointment_reminder"] * 4
                                               + ["previsit_instructions"])
    assert all(new_start in m["dedupe_key"] for m in live)
    old = [m for m in messages(call, appointment_id="appt-4") if m["status"] == "cancelled"]
    assert len(old) == 7 and all(data["starts_at"] in m["dedupe_key"] or m["kind"] == "appointment_confirmation"
                                 for m in old)


def test_a_patient_message_due_at_night_waits_for_the_local_morning(start_notifications, amqp):
    container = start_notifications(QUIET_HOURS_START="21:00", QUIET_HOURS_END="08:00")
    # A fixed-offset zone where it is 02:00-ish now, whenever the test runs.
    now = datetime.now(timezone.utc)
    shift = (2 - now.hour) % 24  # hours to add to UTC to get 02:xx
    shift = shift - 24 if shift > 12 else shift
    zone = f"Etc/GMT{'-' if shift >= 0 else '+'}{abs(shift)}"  # Etc/ signs are inverted
    pid = patient(container, amqp, time_zone=zone)
    with entrypoint_hook(container, "list_messages") as hook:
        welcome = hook({"patient_id": pid})["items"]
    local_due = [datetime.fromisoformat(m["due_at"].replace("Z", "+00:00")).astimezone(ZoneInfo(zone))
                 for m in welcome]
    assert len(local_due) == 2 and all((d.hour, d.minute) == (8, 0) for d in local_due)
    assert all(d - now.astimezone(ZoneInfo(zone)) < timedelta(hours=7) for d in local_due)
    # The delivery log says so at once, as its own step with the reason.
    for message in welcome:
        with entrypoint_hook(container, "get_message") as hook:
            log = hook(message["notification_id"])["log"]
        assert [step["status"] for step in log] == ["queued", "deferred"]
        assert log[1]["detail"].startswith(f"quiet hours (21:00–08:00 in {zone}): due at 02:")
        assert "held until" in log[1]["detail"] and "08:00 local time" in log[1]["detail"]


def test_a_message_outside_quiet_hours_logs_no_deferral(notifications, amqp, call):
    pid = patient(notifications, amqp)
    for message in messages(call, patient_id=pid):
        assert [step["status"] for step in call("get_message", message["notification_id"])["log"]] == ["queued"]


def test_staff_alerts_are_queued_urgent_by_mrn(start_notifications, amqp):
    container = start_notifications(STAFF_ALERT_EMAILS=["oncall@clinic.example"],
                                    STAFF_WEBHOOK={"url": "http://127.0.0.1:9/pager", "secret": "p"})
    data = {"patient_id": "p-9", "mrn": "MRN0000009", "flags": ["phq9_self_harm_thoughts"], "instrument": "phq9",
            "band": "severe", "response_id": "resp-9"}
    body = deliver(container, "on_patient_risk_flagged", amqp, "intake", "patient.risk_flagged", data)
    with entrypoint_waiter(container, "on_patient_risk_flagged", timeout=10):
        republish(amqp, body)
    with entrypoint_hook(container, "list_messages") as hook:
        alerts = hook({"kind": "staff_risk_alert"})["items"]
    assert sorted(m["channel"] for m in alerts) == ["staff_email", "staff_webhook"]
    assert all(m["urgent"] and m["recipient"] == "staff" for m in alerts)


def test_preferences_are_validated_and_patients_must_be_known(notifications, amqp, call):
    pid = patient(notifications, amqp)
    assert call("set_preferences", pid, {"sms": False})["sms"] == {
        "consented": True, "enabled": False, "address_on_record": True}
    with pytest.raises(ValidationFailed) as caught:
        call("set_preferences", pid, {"sms": "sometimes"})
    assert caught.value.details[0]["field"] == "sms"
    with pytest.raises(ValidationFailed):
        call("set_preferences", pid, {})
    with pytest.raises(NotFound):
        call("get_preferences", str(uuid.uuid4()))
    with pytest.raises(ValidationFailed) as caught:
        call("list_messages", {"status": "lost"})
    assert caught.value.details[0]["field"] == "status"


def test_resend_requeues_a_dead_message_and_refuses_a_sent_one(notifications, amqp, call, databases):
    pid = patient(notifications, amqp, consents=("email",))
    [welcome] = messages(call, patient_id=pid)
    with databases.engine("notifications").begin() as connection:
        connection.execute(sa.text("UPDATE messages SET status='dead', attempts=8 WHERE notification_id=:id"),
                           {"id": welcome["notification_id"]})
    assert [m["notification_id"] for m in call("list_dead_messages", 20, 0)["items"]] == [welcome["notification_id"]]
    again = call("resend", welcome["notification_id"], {"urgent": True})
    assert (again["status"], again["attempts"], again["urgent"]) == ("queued", 0, True)
    log = call("get_message", welcome["notification_id"])["log"]
    assert log[-1]["actor"] == "frontdesk (front_desk)" and "resend" in log[-1]["detail"]
    with databases.engine("notifications").begin() as connection:
        connection.execute(sa.text("UPDATE messages SET status='sent' WHERE notification_id=:id"),
                           {"id": welcome["notification_id"]})
    with pytest.raises(Conflict):
        call("resend", welcome["notification_id"])
    with pytest.raises(NotFound):
        call("resend", str(uuid.uuid4()))


def test_billing_events_queue_invoice_receipt_and_overdue_messages(notifications, amqp, call):
    pid = patient(notifications, amqp)
    invoice = {"patient_id": pid, "invoice_id": "inv-1", "number": "INV-000001", "total_cents": 45000,
               "currency": "USD", "due_date": "2026-12-01", "issued_at": iso_in(0)}
    deliver(notifications, "on_invoice_issued", amqp, "billing", "invoice.issued", invoice)
    payment = {"patient_id": pid, "invoice_id": "inv-1", "amount_cents": 20000, "currency": "USD",
               "received_at": iso_in(0)}
    deliver(notifications, "on_payment_received", amqp, "billing", "payment.received",
            {**payment, "payment_id": "pay-1", "method": "card"})
    deliver(notifications, "on_payment_received", amqp, "billing", "payment.received",
            {**payment, "payment_id": "pay-2", "method": "package_credit"})
    overdue = {"patient_id": pid, "invoice_id": "inv-1", "number": "INV-000001", "balance_cents": 25000,
               "currency": "USD", "due_date": "2026-12-01", "days_overdue": 1}
    deliver(notifications, "on_invoice_overdue", amqp, "billing", "invoice.overdue", overdue)
    deliver(notifications, "on_invoice_overdue", amqp, "billing", "invoice.overdue", {**overdue, "days_overdue": 2})
    deliver(notifications, "on_refund_issued", amqp, "billing", "refund.issued", {
        "patient_id": pid, "refund_id": "ref-1", "payment_id": "pay-1", "invoice_id": "inv-1", "amount_cents": 5000,
        "currency": "USD", "issued_at": iso_in(0)})
    billing = [m for m in messages(call, patient_id=pid) if m["kind"] != "welcome"]
    assert sorted((m["kind"], m["channel"]) for m in billing) == [
        ("invoice_issued", "email"), ("invoice_issued", "sms"), ("invoice_overdue", "email"),
        ("invoice_overdue", "sms"), ("payment_receipt", "email"), ("payment_receipt", "sms"),
        ("refund_issued", "email"), ("refund_issued", "sms")]
    assert all("pay-2" not in m["dedupe_key"] for m in billing)


def test_a_follow_up_is_queued_for_the_next_local_morning(notifications, amqp, call):
    pid = patient(notifications, amqp, time_zone="America/New_York")
    session = {"patient_id": pid, "appointment_id": "appt-9", "plan_id": "plan-1", "route": "iv_infusion",
               "drug": "ketamine", "dose_mg": 35.0, "duration_minutes": 40, "clinician_id": "dr.who", "sequence": 1}
    ended = datetime.now(timezone.utc) - timedelta(minutes=5)
    deliver(notifications, "on_session_completed", amqp, "sessions", "session.completed", {
        **session, "session_id": "s-1", "started_at": iso_in(-45 * 60), "ended_at": iso_in(-5 * 60),
        "date_of_service": str(ended.date())})
    follow_ups = [m for m in messages(call, patient_id=pid) if m["kind"] == "session_follow_up"]
    tomorrow = ended.astimezone(ZoneInfo("America/New_York")).date() + timedelta(days=1)
    expected = datetime.combine(tomorrow, datetime.min.time().replace(hour=10), tzinfo=ZoneInfo("America/New_York"))
    assert len(follow_ups) == 2 and all(m["status"] == "queued" for m in follow_ups)
    assert {m["due_at"] for m in follow_ups} == {expected.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")}
    # The same kind of event replayed weeks later is recorded, not sent.
    deliver(notifications, "on_session_completed", amqp, "sessions", "session.completed", {
        **session, "session_id": "s-old", "started_at": "2026-03-07T20:00:00Z", "ended_at": "2026-03-07T20:40:00Z",
        "date_of_service": "2026-03-07"})
    old = [m for m in messages(call, patient_id=pid) if m["dedupe_key"].startswith("s-old:")]
    assert len(old) == 2 and all(m["status"] == "skipped" for m in old)


def test_every_access_to_a_patients_messages_is_audited(notifications, amqp, call):
    pid = patient(notifications, amqp)
    call("get_preferences", pid)
    call("set_preferences", pid, {"sms": False})
    [first, *_] = messages(call, patient_id=pid)
    call("get_message", first["notification_id"])
    trail = call("list_record_access", pid)
    assert [entry["action"] for entry in trail] == ["read_message", "read_messages", "preferences",
                                                    "read_preferences"]
    assert {entry["actor"] for entry in trail} == {"frontdesk (front_desk)"}
    with pytest.raises(ValidationFailed):
        call("list_record_access", pid, 0)


def test_a_display_name_that_names_treatment_is_warned_about_at_start(start_notifications, caplog):
    with caplog.at_level(logging.WARNING, logger="services.notifications.dependencies"):
        start_notifications()
        assert not [r for r in caplog.records if "names treatment" in r.getMessage()]
        start_notifications(CLINIC_DISPLAY_NAME="Sunrise Ketamine Clinic")
    [warning] = [r.getMessage() for r in caplog.records if "names treatment" in r.getMessage()]
    assert "CLINIC_DISPLAY_NAME" in warning and "ketamine" in warning


def test_a_booked_course_is_confirmed_once_and_each_appointment_keeps_its_reminders(notifications, amqp, call):
    pid = patient(notifications, amqp)
    course = [appointment_facts(pid, f"course-appt-{n}", starts_in_seconds=(3 + 2 * n) * 86400) for n in range(6)]
    for n, data in enumerate(course):
        deliver(notifications, "on_appointment_scheduled", amqp, "sessions", "appointment.scheduled",
                {**data, "sequence": n + 1, "course_id": "course-1"})
    booked = {"patient_id": pid, "plan_id": "plan-1", "course_id": "course-1", "route": "iv_infusion",
              "chair_id": "chair-2", "clinician_id": "dr.who",
              "appointments": [{k: d[k] for k in ("appointment_id", "sequence", "starts_at", "ends_at")}
                               for d in course]}
    body = deliver(notifications, "on_course_booked", amqp, "sessions", "course.booked", booked)
    with entrypoint_waiter(notifications, "on_course_booked", timeout=10):
        republish(amqp, body)
    owed = [m for m in messages(call, patient_id=pid) if m["kind"] != "welcome"]
    by_kind = {}
    for m in owed:
        by_kind.setdefault(m["kind"], []).append(m["channel"])
    assert sorted(by_kind["course_confirmation"]) == ["email", "sms"]
    assert "appointment_confirmation" not in by_kind
    assert len(by_kind["appointment_reminder"]) == 6 * 2 * 2   # 48 h and 2 h, email and SMS, per appointment
    confirmation = next(m for m in owed if m["kind"] == "course_confirmation")
    assert confirmation["dedupe_key"] == "course-1:course_confirmation:" + confirmation["channel"]


def test_an_appointment_booked_alone_is_still_confirmed_alone(notifications, amqp, call):
    pid = patient(notifications, amqp)
    deliver(notifications, "on_appointment_scheduled", amqp, "sessions", "appointment.scheduled",
            {**appointment_facts(pid, "single-1", starts_in_seconds=3 * 86400), "course_id": None})
    kinds = sorted(m["kind"] for m in messages(call, appointment_id="single-1"))
    assert kinds.count("appointment_confirmation") == 2

"""The FHIR export of a patient's messages validates against the
fhir.resources models (R4B, the R4-compatible release fhir.resources
ships), maps every message status, and carries no message body."""
import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.communication import Communication

from common.errors import NotFound, ValidationFailed
from services.notifications import fhir
from services.notifications.models import Message, Recipient
from services.notifications.service import NotificationsService

NO_QUIET_HOURS = {"QUIET_HOURS_START": "00:00", "QUIET_HOURS_END": "00:00"}
EXPECTED_STATUS = {"sent": "completed", "dead": "stopped", "cancelled": "not-done", "skipped": "not-done",
                   "queued": "in-progress", "retrying": "in-progress"}


@pytest.fixture
def notifications(start_service):
    # Delivery switched off (first sweep an hour away): rows stay as written.
    return start_service(NotificationsService, NOTIFICATIONS={"SCHEDULER_INTERVAL": 3600, **NO_QUIET_HOURS})


def row(pid, status, channel="email", kind="appointment_reminder", recipient="patient", minutes=0, **extra):
    at = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc) + timedelta(minutes=minutes)
    return {"notification_id": str(uuid.uuid4()), "dedupe_key": str(uuid.uuid4()), "kind": kind, "channel": channel,
            "recipient": recipient, "patient_id": pid, "appointment_id": None, "urgent": False, "status": status,
            # Template facts are stored; the export must leave them out.
            "context": {"starts_at": "2026-11-03T17:00:00Z", "amount_cents": 45000},
            "due_at": at, "attempts": 0, "created_at": at, "updated_at": at,
            "sent_at": at if status == "sent" else None, "last_error": None, **extra}


def test_a_patients_messages_export_as_valid_fhir_communications(call, databases):
    pid = str(uuid.uuid4())
    appointment = str(uuid.uuid4())
    rows = [row(pid, "sent", kind="welcome", minutes=0),
            row(pid, "sent", channel="sms", kind="appointment_reminder", minutes=1, appointment_id=appointment),
            row(pid, "dead", channel="sms", kind="invoice_issued", minutes=2, last_error="550 mailbox unavailable"),
            row(pid, "cancelled", kind="appointment_confirmation", minutes=3, appointment_id=appointment),
            row(pid, "skipped", channel="sms", kind="session_follow_up", minutes=4),
            row(pid, "queued", kind="payment_receipt", minutes=5, urgent=True),
            row(pid, "retrying", kind="invoice_overdue", minutes=6)]
    others = [row(pid, "sent", channel="staff_email", kind="staff_vitals_alert", recipient="staff"),
              row(None, "sent", channel="webhook", kind="webhook", recipient="webhook"),
              row(str(uuid.uuid4()), "sent")]
    with databases.engine("notifications").begin() as connection:
        connection.execute(sa.insert(Recipient.__table__), [{
            "patient_id": pid, "mrn": "MRN0000042", "given_name": "Ana", "email": "ana@example.com",
            "phone": "+14155550123", "time_zone": "America/Los_Angeles", "details_as_of": rows[0]["created_at"],
            "email_consent": True, "sms_consent": True, "email_enabled": True, "sms_enabled": True,
            "updated_at": rows[0]["created_at"]}])
        connection.execute(sa.insert(Message.__table__), rows + others)

    bundle = call("export_fhir_communications", pid)
    Bundle.model_validate(bundle)
    assert bundle["type"] == "collection"
    resources = [entry["resource"] for entry in bundle["entry"]]
    for resource in resources:
        Communication.model_validate(resource)
    # Only the patient's own email and SMS messages, oldest first.
    assert [r["id"] for r in resources] == [r["notification_id"] for r in rows]
    assert [entry["fullUrl"] for entry in bundle["entry"]] == [f"urn:uuid:{r['notification_id']}" for r in rows]
    assert [r["status"] for r in resources] == [EXPECTED_STATUS[r["status"]] for r in rows]
    assert [r["category"][0]["coding"][0]["code"] for r in resources] == [
        "notification", "reminder", "notification", "notification", "notification", "notification", "reminder"]
    assert {r["category"][0]["coding"][0]["system"] for r in resources} == {fhir.COMMUNICATION_CATEGORY}
    assert [(r["medium"][0]["coding"][0]["system"], r["medium"][0]["coding"][0]["code"]) for r in resources] == [
        (fhir.PARTICIPATION_MODE, "EMAILWRIT" if r["channel"] == "email" else "SMSWRIT") for r in rows]
    for resource in resources:
        assert resource["subject"] == {"reference": f"Patient/{pid}"}
        assert resource["recipient"] == [{"reference": f"Patient/{pid}"}]
    sent = resources[0]
    assert sent["sent"] == "2026-11-01T09:00:00Z"
    assert "sent" not in resources[2] and resources[2]["statusReason"]["coding"][0]["code"] == "notification-dead"
    assert resources[1]["about"] == [{"reference": f"Appointment/{appointment}"}]
    assert resources[5]["priority"] == "urgent" and resources[0]["priority"] == "routine"
    # Minimum necessary: no payload, no contact detail, no template fact, no provider answer.
    text = json.dumps(bundle)
    assert all("payload" not in r for r in resources)
    for secret in ("ana@example.com", "+14155550123", "Ana", "MRN0000042", "amount_cents", "starts_at", "550 mailbox"):
        assert secret not in text

    page = call("export_fhir_communications", pid, 2, 3)
    assert [e["resource"]["id"] for e in page["entry"]] == [r["notification_id"] for r in rows[3:5]]


def test_bad_or_unknown_patients_and_pages_are_refused(call):
    with pytest.raises(NotFound):
        call("export_fhir_communications", str(uuid.uuid4()))
    for bad in (None, "", 42, "x" * 37):
        with pytest.raises(ValidationFailed):
            call("export_fhir_communications", bad)
    with pytest.raises(ValidationFailed) as caught:
        call("export_fhir_communications", str(uuid.uuid4()), 0)
    assert caught.value.details[0]["field"] == "limit"
    with pytest.raises(ValidationFailed) as caught:
        call("export_fhir_communications", str(uuid.uuid4()), 10, -1)
    assert caught.value.details[0]["field"] == "offset"


@pytest.mark.parametrize("status, expected", sorted(EXPECTED_STATUS.items()))
def test_each_message_status_maps_to_a_valid_communication(status, expected):
    message = Message(**row("p-1", status, channel="sms"))
    resource = fhir.communication_resource(message)
    Communication.model_validate(resource)
    assert resource["status"] == expected
    assert resource["medium"][0]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode", "code": "SMSWRIT",
        "display": "SMS message"}
    assert ("sent" in resource) == (status == "sent")

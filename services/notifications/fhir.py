"""Read-only FHIR R4 export of the messages notifications sent (or owes)
to a patient: one Communication per message, in a Bundle of type
"collection".

Minimum necessary: no payload (the body is rendered from a template when
sent and never stored), no contact detail, no template facts (amounts,
times) and no provider answer. The patient appears only as the reference
``Patient/<patient_id>``; the Patient resource itself is intake's."""
from __future__ import annotations

from services.notifications.domain import Channel, Kind, Status
from services.notifications.models import Message
from common.events import iso

LOCAL_CODES = "urn:clinic:codes"
COMMUNICATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/communication-category"
PARTICIPATION_MODE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"

# Message status → Communication.status (EventStatus).
STATUS = {
    Status.SENT.value: "completed",
    Status.DEAD.value: "stopped",
    Status.CANCELLED.value: "not-done",
    Status.SKIPPED.value: "not-done",
    Status.QUEUED.value: "in-progress",
    Status.RETRYING.value: "in-progress",
}

# Why a message did not go, for the statuses that say so.
STATUS_REASON = {
    Status.DEAD.value: "delivery abandoned after its attempts or a permanent refusal",
    Status.CANCELLED.value: "cancelled (its appointment was moved or cancelled)",
    Status.SKIPPED.value: "skipped (no consent, channel off, no address or too late)",
}

# Channel → the HL7 v3 ParticipationMode (code, display).
MEDIUM = {
    Channel.EMAIL.value: ("EMAILWRIT", "email"),
    Channel.SMS.value: ("SMSWRIT", "SMS message"),
}

REMINDERS = frozenset({Kind.APPOINTMENT_REMINDER.value, Kind.PREVISIT_INSTRUCTIONS.value, Kind.INVOICE_OVERDUE.value})
ALERTS = frozenset({Kind.STAFF_RISK_ALERT.value, Kind.STAFF_VITALS_ALERT.value})
CATEGORY_DISPLAY = {"reminder": "Reminder", "notification": "Notification", "alert": "Alert"}


def category(kind: str) -> str:
    """reminder (an appointment coming up, its pre-visit text, an invoice overdue), alert (staff
    alerts) or notification (everything else: confirmations, notices,
    receipts, welcome, follow-up)."""
    if kind in REMINDERS:
        return "reminder"
    if kind in ALERTS:
        return "alert"
    return "notification"


def communication_status(status: str) -> str:
    return STATUS.get(status, "unknown")


def communication_resource(message: Message) -> dict:
    patient = {"reference": f"Patient/{message.patient_id}"}
    kind_category = category(message.kind)
    resource = {
        "resourceType": "Communication",
        "id": message.notification_id,
        "status": communication_status(message.status),
        "category": [{"coding": [{"system": COMMUNICATION_CATEGORY, "code": kind_category,
                                  "display": CATEGORY_DISPLAY[kind_category]}]}],
        "priority": "urgent" if message.urgent else "routine",
        "subject": patient,
        "topic": {"coding": [{"system": LOCAL_CODES, "code": f"notification-{message.kind}"}],
                  "text": message.kind.replace("_", " ")},
        "recipient": [patient],
    }
    if message.status in STATUS_REASON:
        resource["statusReason"] = {
            "coding": [{"system": LOCAL_CODES, "code": f"notification-{message.status}"}],
            "text": STATUS_REASON[message.status],
        }
    if message.channel in MEDIUM:
        code, display = MEDIUM[message.channel]
        resource["medium"] = [{"coding": [{"system": PARTICIPATION_MODE, "code": code, "display": display}]}]
    if message.appointment_id:
        resource["about"] = [{"reference": f"Appointment/{message.appointment_id}"}]
    if message.sent_at is not None:
        resource["sent"] = iso(message.sent_at)
    return resource


def communications_bundle(messages: list[Message]) -> dict:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": f"urn:uuid:{m.notification_id}", "resource": communication_resource(m)}
                  for m in messages],
    }

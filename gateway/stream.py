"""What the live-update stream (``GET /api/v1/stream``) shows, declared
once: which event types are streamed, the fields of each that may leave the
gateway, and which role sees which. Pure: nothing here touches the broker.

A streamed event carries ids, states and times only, so a browser tab left
open on a shared screen shows no names, scores, doses or message bodies; the
UI reads the record itself (audited, role-checked) when it needs more. The
projection copies only the fields allow-listed here, so a field added to a
contract later never reaches the stream until someone adds it on purpose.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

from common.events import EventData
from services.billing import events as billing
from services.intake import events as intake
from services.notifications import events as notifications
from services.sessions import events as sessions


@dataclass(frozen=True)
class Streamed:
    contract: type[EventData]
    fields: tuple[str, ...]
    # Streamed only when this holds for the event's data (e.g. only the
    # failures that made a message dead).
    when: Callable[[dict], bool] | None = None


STREAMED: dict[str, Streamed] = {s.contract.type: s for s in (
    # Session state, check-in, vitals alerts and risk flags: the clinical floor.
    Streamed(sessions.SessionCheckedIn, ("patient_id", "session_id", "appointment_id", "checked_in_at")),
    Streamed(sessions.SessionStarted, ("patient_id", "session_id", "appointment_id", "started_at")),
    Streamed(sessions.SessionVitalsAlert, ("patient_id", "session_id", "chair_id", "clinician_id", "recorded_at")),
    Streamed(sessions.SessionCompleted, ("patient_id", "session_id", "appointment_id", "plan_id", "started_at",
                                         "ended_at")),
    Streamed(sessions.SessionAborted, ("patient_id", "session_id", "appointment_id", "aborted_at")),
    Streamed(intake.PatientRiskFlagged, ("patient_id", "response_id")),
    # The day's schedule.
    Streamed(sessions.AppointmentScheduled, ("patient_id", "appointment_id", "plan_id", "kind", "starts_at",
                                             "ends_at", "chair_id", "clinician_id", "course_id")),
    Streamed(sessions.AppointmentRescheduled, ("patient_id", "appointment_id", "previous_starts_at", "starts_at",
                                               "ends_at", "chair_id", "clinician_id")),
    Streamed(sessions.AppointmentCancelled, ("patient_id", "appointment_id", "starts_at", "cancelled_at", "late")),
    Streamed(sessions.AppointmentNoShow, ("patient_id", "appointment_id", "starts_at")),
    # Money: ids, numbers and dates, never amounts.
    Streamed(billing.InvoiceIssued, ("patient_id", "invoice_id", "number", "due_date", "issued_at")),
    Streamed(billing.PaymentReceived, ("patient_id", "payment_id", "invoice_id", "received_at")),
    Streamed(billing.InvoicePaid, ("patient_id", "invoice_id", "number", "paid_at")),
    Streamed(billing.InvoiceOverdue, ("patient_id", "invoice_id", "number", "due_date")),
    Streamed(billing.RefundIssued, ("patient_id", "refund_id", "payment_id", "invoice_id", "issued_at")),
    # Dead messages: the provider's answer (``error``) stays out.
    Streamed(notifications.NotificationFailed, ("notification_id", "kind", "channel", "recipient", "patient_id",
                                                "attempts", "dead"), when=lambda data: data.get("dead") is True),
)}

# Contracts deliberately not streamed: identity and contact details, intake
# decisions and scores, plans, courses, and messages that went well. A new
# contract must be put in STREAMED or here (a unit test checks).
NOT_STREAMED: frozenset[type[EventData]] = frozenset({
    intake.PatientRegistered, intake.PatientUpdated, intake.ConsentRecorded, intake.IntakeSubmitted,
    intake.IntakeScreened, intake.IntakeApproved, intake.IntakeDeclined, intake.SelfReportRequested,
    intake.SelfReportCompleted, sessions.PlanCreated, sessions.CourseBooked, sessions.CourseCompleted,
    notifications.NotificationSent,
})

CLINICAL = ("session.checked_in", "session.started", "session.vitals_alert", "session.completed",
            "session.aborted", "patient.risk_flagged")
SESSION_STATE = ("session.checked_in", "session.started", "session.completed", "session.aborted")
APPOINTMENTS = ("appointment.scheduled", "appointment.rescheduled", "appointment.cancelled", "appointment.no_show")
MONEY = ("invoice.issued", "payment.received", "invoice.paid", "invoice.overdue", "refund.issued")

# Which role sees which event types; admin sees every streamed type,
# dead messages included.
TYPES_BY_ROLE: dict[str, frozenset[str]] = {
    "clinician": frozenset(CLINICAL),
    "front_desk": frozenset(SESSION_STATE + APPOINTMENTS),
    "billing": frozenset(MONEY),
    "admin": frozenset(STREAMED),
}


def types_for(role: str, asked: str | None = None) -> frozenset[str]:
    """The event types a role's stream carries, narrowed by ``?types=``
    (comma separated). An asked type the role may not see, or that is not
    streamed, is refused (``UnknownTypes``) rather than silently dropped."""
    allowed = TYPES_BY_ROLE.get(role, frozenset())
    if not asked or not asked.strip():
        return allowed
    wanted = {name.strip() for name in asked.split(",") if name.strip()}
    refused = sorted(wanted - allowed)
    if refused:
        raise UnknownTypes(refused)
    return frozenset(wanted)


class UnknownTypes(ValueError):
    def __init__(self, refused: list[str]):
        super().__init__(", ".join(refused))
        self.refused = refused


def projection(envelope) -> dict | None:
    """The streamed form of an event envelope as published (a dict): the
    event type, id and time and the allow-listed fields of its data, or
    ``None`` when this event is not streamed."""
    if not isinstance(envelope, dict):
        return None
    streamed = STREAMED.get(envelope.get("type"))
    data = envelope.get("data")
    if streamed is None or not isinstance(data, dict):
        return None
    if streamed.when is not None and not streamed.when(data):
        return None
    shown = {"type": envelope["type"], "event_id": envelope.get("event_id"),
             "occurred_at": envelope.get("occurred_at")}
    shown.update({name: data.get(name) for name in streamed.fields})
    return shown


# ------------------------------------------------------- server-sent events

# One server-sent event as the OpenAPI document describes it (3.1: the
# schema of an event-stream describes each event): ``data`` is JSON of
# scalars only, ids, states and times.
SSE_EVENT_SCHEMA = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": sorted(STREAMED) + ["reset"],
                  "description": "the event type as on the bus; reset: reload, the cursor is too old or unknown"},
        "id": {"type": "string", "description": "opaque cursor to send back as Last-Event-ID; empty on reset"},
        "retry": {"type": "integer"},
        "data": {"type": "string", "contentMediaType": "application/json", "contentSchema": {
            "type": "object", "required": ["type"],
            "properties": {"type": {"type": "string"}, "event_id": {"type": "string"},
                           "occurred_at": {"type": "string"}, "reason": {"type": "string"}},
            "additionalProperties": {"type": ["string", "integer", "boolean", "null"]}}},
    },
}


def sse_event(cursor: int | None, event_type: str, data: dict) -> bytes:
    """One SSE message. An empty ``id:`` clears the browser's cursor (after a
    reset, so its next reconnect starts from now instead of resetting again)."""
    lines = [f"id: {'' if cursor is None else cursor}", f"event: {event_type}",
             "data: " + json.dumps(data, separators=(",", ":"))]
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def sse_cursor_only(cursor: int) -> bytes:
    """Moves the browser's cursor past events this client was not shown,
    without firing an event: a reconnect then replays less."""
    return f"id: {cursor}\n\n".encode("utf-8")


def sse_comment(text: str) -> bytes:
    return f": {text}\n\n".encode("utf-8")


def sse_retry(milliseconds: int) -> bytes:
    return f"retry: {milliseconds}\n\n".encode("utf-8")


def parse_cursor(raw: str | None) -> int | None | str:
    """The offset in a ``Last-Event-ID``: ``None`` when absent (start from
    now), ``"unknown"`` when it is not one this gateway hands out."""
    if raw is None or not raw.strip():
        return None
    raw = raw.strip()
    if not raw.isdigit() or len(raw) > 19:
        return "unknown"
    return int(raw)

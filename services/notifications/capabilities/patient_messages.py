"""What patients are told: appointment confirmations, reminders, moves
and cancellations, a course's confirmation, the follow-up after a session,
and billing's invoices, receipts, overdue notices and refunds. Each is
queued here and sent by ``Delivery`` when due."""
from __future__ import annotations

import sqlalchemy as sa

from common.events import iso, utcnow
from common.handlers import consumes
from services.billing.events import InvoiceIssued, InvoiceOverdue, PaymentReceived, RefundIssued
from services.notifications import domain, rendering, two_way_sms
from services.notifications.capabilities.messages_owed import MessagesOwed
from services.notifications.domain import Channel, Kind, Status
from services.notifications.models import Appointment, Message, Recipient
from services.notifications.schemas import parse_instant
from services.sessions.events import (
    AppointmentCancelled, AppointmentRescheduled, AppointmentScheduled, CourseBooked, SessionCompleted,
)


class PatientMessages(MessagesOwed):

    # ------------------------------------------------------------ appointments

    @consumes(AppointmentScheduled)
    def on_appointment_scheduled(self, uow, event):
        data = event.data
        appointment = uow.session.get(Appointment, data.appointment_id, with_for_update=True)
        if appointment is not None and not domain.is_newer(event.occurred_at, appointment.as_of):
            # A move or cancellation that happened later was applied first.
            self._forward(uow, event)
            return
        starts_at = data.starts_at
        if appointment is None:
            appointment = Appointment(appointment_id=data.appointment_id, patient_id=data.patient_id,
                                      starts_at=starts_at, cancelled=False, as_of=event.occurred_at)
            uow.session.add(appointment)
        else:
            appointment.starts_at, appointment.as_of = starts_at, event.occurred_at
        uow.session.flush()
        # An appointment booked as part of a course is confirmed with the
        # others in one message (course.booked); its reminders are its own.
        if not data.course_id:
            self._queue_for_patient(uow, event, Kind.APPOINTMENT_CONFIRMATION, reason=appointment.appointment_id,
                                    patient_id=appointment.patient_id, desired=utcnow(),
                                    context={"starts_at": iso(starts_at)}, appointment_id=appointment.appointment_id)
        self._queue_reminders(uow, event, appointment)
        self._forward(uow, event)

    @consumes(CourseBooked)
    def on_course_booked(self, uow, event):
        """One confirmation listing every date of a booked course."""
        data = event.data
        appointments = [{"appointment_id": entry.appointment_id, "starts_at": iso(entry.starts_at)}
                        for entry in data.appointments]
        self._queue_for_patient(uow, event, Kind.COURSE_CONFIRMATION, reason=data.course_id,
                                patient_id=data.patient_id, desired=utcnow(),
                                context={"appointments": appointments})
        self._forward(uow, event)

    @consumes(AppointmentRescheduled)
    def on_appointment_rescheduled(self, uow, event):
        data = event.data
        appointment = uow.session.get(Appointment, data.appointment_id, with_for_update=True)
        if appointment is not None and (appointment.cancelled or not domain.is_newer(event.occurred_at, appointment.as_of)):
            self._forward(uow, event)
            return
        starts_at = data.starts_at
        if appointment is None:
            appointment = Appointment(appointment_id=data.appointment_id, patient_id=data.patient_id,
                                      starts_at=starts_at, cancelled=False, as_of=event.occurred_at)
            uow.session.add(appointment)
        else:
            self._cancel_pending(uow, appointment.appointment_id, "the appointment was moved",
                                 kinds=domain.APPOINTMENT_KINDS)
            appointment.starts_at, appointment.as_of = starts_at, event.occurred_at
        uow.session.flush()
        moved_reason = f"{appointment.appointment_id}@{iso(starts_at)}"
        self._queue_for_patient(uow, event, Kind.APPOINTMENT_MOVED, reason=moved_reason,
                                patient_id=appointment.patient_id, desired=utcnow(),
                                context={"starts_at": iso(starts_at)}, appointment_id=appointment.appointment_id)
        self._queue_reminders(uow, event, appointment)
        self._forward(uow, event)

    @consumes(AppointmentCancelled)
    def on_appointment_cancelled(self, uow, event):
        data = event.data
        appointment = uow.session.get(Appointment, data.appointment_id, with_for_update=True)
        starts_at = data.starts_at
        # A cancellation is final whatever order the events arrive in: a
        # late "scheduled" then finds a newer fact and queues nothing.
        if appointment is None:
            appointment = Appointment(appointment_id=data.appointment_id, patient_id=data.patient_id,
                                      starts_at=starts_at, cancelled=True, as_of=event.occurred_at)
            uow.session.add(appointment)
        else:
            appointment.cancelled = True
            if domain.is_newer(event.occurred_at, appointment.as_of):
                appointment.as_of = event.occurred_at
        uow.session.flush()
        self._cancel_pending(uow, appointment.appointment_id, "the appointment was cancelled")
        if starts_at and starts_at > utcnow():
            self._queue_for_patient(uow, event, Kind.APPOINTMENT_CANCELLED, reason=appointment.appointment_id,
                                    patient_id=appointment.patient_id, desired=utcnow(),
                                    context={"starts_at": iso(starts_at)}, appointment_id=appointment.appointment_id)
        self._forward(uow, event)

    @consumes(SessionCompleted)
    def on_session_completed(self, uow, event):
        data = event.data
        settings = self.settings
        recipient = uow.session.get(Recipient, data.patient_id)
        zone = self._zone(recipient)
        ended_at = data.ended_at
        late = domain.follow_up_too_late(ended_at, utcnow(), zone, settings.timing)
        self._queue_for_patient(uow, event, Kind.SESSION_FOLLOW_UP, reason=data.session_id,
                                patient_id=data.patient_id,
                                desired=domain.follow_up_time(ended_at, zone, settings.timing),
                                decision=domain.SendDecision(None, "the day after the session has passed") if late else None)
        self._forward(uow, event)

    # ------------------------------------------------------------ billing

    @consumes(InvoiceIssued)
    def on_invoice_issued(self, uow, event):
        self._queue_billing(uow, event, Kind.INVOICE_ISSUED, reason=event.data.invoice_id)

    @consumes(PaymentReceived)
    def on_payment_received(self, uow, event):
        if event.data.method == "package_credit":
            # Billing settles package-covered lines itself when it issues the
            # invoice; the patient paid nothing then, so there is no receipt.
            self._forward(uow, event)
            return
        self._queue_billing(uow, event, Kind.PAYMENT_RECEIPT, reason=event.data.payment_id)

    @consumes(InvoiceOverdue)
    def on_invoice_overdue(self, uow, event):
        # Billing reports an invoice overdue once per due date; a new due
        # date (a payment plan) is a new reason to remind.
        data = event.data
        self._queue_billing(uow, event, Kind.INVOICE_OVERDUE, reason=f"{data.invoice_id}+{data.due_date.isoformat()}")

    @consumes(RefundIssued)
    def on_refund_issued(self, uow, event):
        self._queue_billing(uow, event, Kind.REFUND_ISSUED, reason=event.data.refund_id)

    def _queue_reminders(self, uow, event, appointment: Appointment) -> None:
        settings = self.settings
        starts_at = parse_instant(appointment.starts_at)
        zone = self._zone(uow.session.get(Recipient, appointment.patient_id))
        for plan in domain.plan_reminders(starts_at, utcnow(), zone, settings.timing):
            if plan.passed:
                continue
            self._queue_for_patient(
                uow, event, Kind.APPOINTMENT_REMINDER, reason=f"{appointment.appointment_id}@{iso(starts_at)}/{plan.label}",
                patient_id=appointment.patient_id, desired=plan.desired, decision=plan.decision,
                context={"starts_at": iso(starts_at), "reminder": plan.label},
                appointment_id=appointment.appointment_id)
        # The day before: fasting, clear liquids and an escort, answered
        # YES or NO by text (capabilities/inbound_sms.py).
        previsit = two_way_sms.plan_previsit(starts_at, utcnow(), zone, settings.timing)
        self._queue_for_patient(
            uow, event, Kind.PREVISIT_INSTRUCTIONS, reason=f"{appointment.appointment_id}@{iso(starts_at)}",
            patient_id=appointment.patient_id, desired=previsit.desired, decision=previsit.decision,
            context={"starts_at": iso(starts_at)}, appointment_id=appointment.appointment_id,
            channels=(Channel.SMS,))

    def _queue_billing(self, uow, event, kind: Kind, *, reason: str) -> None:
        # Every fact a message may show is one its event's contract carries:
        # a name missing here is a bug to hear about, not a blank in a message.
        given = event.data.facts()
        facts = {name: given[name] for name in rendering.ALLOWED_FACTS[kind]}
        self._queue_for_patient(uow, event, kind, reason=reason, patient_id=event.data.patient_id,
                                desired=utcnow(), context=facts)
        self._forward(uow, event)

    def _cancel_pending(self, uow, appointment_id: str, reason: str, kinds=None) -> None:
        query = sa.select(Message).where(Message.appointment_id == appointment_id,
                                         Message.status.in_(domain.PENDING),
                                         Message.kind != Kind.APPOINTMENT_CANCELLED.value)
        if kinds is not None:
            query = query.where(Message.kind.in_([k.value for k in kinds]))
        for message in uow.session.execute(query.with_for_update()).scalars():
            self._settle(uow, message, Status.CANCELLED, reason)

"""The notifications service: turns clinic events into messages owed
(``messages``, one row per recipient, channel and reason, unique on its
dedupe key), and a timer that delivers the due ones, logs every attempt and
retries with backoff until the message is sent or dead.

Handlers only queue; nothing is sent inside an event handler, so a
redelivered event or a second replica can never send twice (the dedupe key
is UNIQUE) and a slow SMTP server never holds up the broker."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import eventlet
import sqlalchemy as sa
from nameko.timer import timer

from common.database import insert_ignoring_duplicates
from common.errors import Conflict, NotFound
from common.events import iso, utcnow
from common.handlers import consumes, rpc
from common.observability import record_notification
from common.service import ClinicService, ConfigSection, configured_timer
from common.validation import paging, parse, require_id
from services.notifications import domain, fhir, rendering, schemas
from services.notifications.capabilities import self_report
from services.notifications.channels import Channels
from services.notifications.domain import Channel, Kind, Status
from services.notifications.models import Appointment, DeliveryLogEntry, Message, Recipient, RecordAccess, new_id
from services.notifications.schemas import parse_instant

log = logging.getLogger(__name__)

URGENT_SWEEP_SECONDS = 0.25


@dataclass(frozen=True)
class Settings:
    timing: domain.Timing
    retry: domain.RetryPolicy
    clinic: str
    clinic_phone: str
    batch: int
    claim: timedelta
    parallel: int

    @classmethod
    def from_config(cls, section: dict) -> "Settings":
        return cls(
            timing=domain.Timing.from_config(section),
            retry=domain.RetryPolicy.from_config(section),
            clinic=display_name(section),
            clinic_phone=str(section.get("CLINIC_PHONE") or "the clinic"),
            batch=int(section.get("SCHEDULER_BATCH", 50)),
            # Longer than the slowest send (SMTP/HTTP timeouts), so another
            # replica does not take a message that is still being sent.
            claim=timedelta(seconds=float(section.get("CLAIM_SECONDS", 120))),
            parallel=int(section.get("SEND_CONCURRENCY", 8)),
        )


def display_name(section: dict) -> str:
    """The name patients see in every SMS, subject and as the email sender.
    ``CLINIC_NAME`` here is the older key, still honoured; the clinic's
    legal name for billing is a separate setting (``BILLING.CLINIC_NAME``)."""
    return str(section.get("CLINIC_DISPLAY_NAME") or section.get("CLINIC_NAME") or domain.DEFAULT_DISPLAY_NAME)


def warn_if_patient_facing_text_discloses_treatment(section: dict) -> None:
    """Said once at start: the messages still go out, but whoever sees a
    patient's lock screen would learn what they are treated for."""
    for key, value in (("CLINIC_DISPLAY_NAME", display_name(section)), ("SMTP_FROM", section.get("SMTP_FROM")),
                       ("SMS_FROM", section.get("SMS_FROM"))):
        words = domain.treatment_words_in(str(value) if value else None)
        if words:
            log.warning("NOTIFICATIONS.%s %r names treatment (%s) and is shown on every patient SMS or email; "
                        "set a neutral CLINIC_DISPLAY_NAME / sender", key, value, ", ".join(words))


def settings_at_start(section: dict) -> Settings:
    """The NOTIFICATIONS section as the service reads it once at start
    (ConfigSection), with the warning said then."""
    warn_if_patient_facing_text_discloses_treatment(section)
    return Settings.from_config(section)


@dataclass(frozen=True)
class Outgoing:
    channel: Channel
    to: tuple[str, ...]
    body: str
    subject: str | None = None
    target: str | None = None
    event_type: str | None = None


class NotificationsService(self_report.SelfReportLinks, ClinicService):
    name = "notifications"

    channels = Channels()
    settings = ConfigSection("NOTIFICATIONS", settings_at_start)

    # ------------------------------------------------------------ read models

    @consumes("intake", "patient.registered")
    def on_patient_registered(self, uow, event):
        self._apply_patient_details(uow, event)
        self._forward(uow, event)

    @consumes("intake", "patient.updated")
    def on_patient_updated(self, uow, event):
        self._apply_patient_details(uow, event)
        self._forward(uow, event)

    @consumes("intake", "consent.recorded")
    def on_consent_recorded(self, uow, event):
        data = event.data
        if data.get("kind") in (Channel.EMAIL.value, Channel.SMS.value):
            channel = Channel(data["kind"])
            recipient = self._recipient_for_update(uow, data["patient_id"])
            if domain.is_newer(event.occurred_at, getattr(recipient, f"{channel.value}_consent_as_of")):
                setattr(recipient, f"{channel.value}_consent", data.get("status") == "granted")
                setattr(recipient, f"{channel.value}_consent_as_of", event.occurred_at)
            # The welcome goes on each channel the first time the patient
            # consents to it (registration itself comes before any consent).
            if getattr(recipient, f"{channel.value}_consent"):
                self._queue_for_patient(uow, event, Kind.WELCOME, reason=recipient.patient_id,
                                        patient_id=recipient.patient_id, desired=utcnow(), channels=(channel,))
        self._forward(uow, event)

    # ------------------------------------------------------------ appointments

    @consumes("sessions", "appointment.scheduled")
    def on_appointment_scheduled(self, uow, event):
        data = event.data
        appointment = uow.session.get(Appointment, data["appointment_id"], with_for_update=True)
        if appointment is not None and not domain.is_newer(event.occurred_at, appointment.as_of):
            # A move or cancellation that happened later was applied first.
            self._forward(uow, event)
            return
        starts_at = parse_instant(data["starts_at"])
        if appointment is None:
            appointment = Appointment(appointment_id=data["appointment_id"], patient_id=data["patient_id"],
                                      starts_at=starts_at, cancelled=False, as_of=event.occurred_at)
            uow.session.add(appointment)
        else:
            appointment.starts_at, appointment.as_of = starts_at, event.occurred_at
        uow.session.flush()
        if not data.get("course_id"):
            # Part of a course, the appointment is confirmed with the others
            # in one message (course.booked); its reminders are its own.
            self._queue_for_patient(uow, event, Kind.APPOINTMENT_CONFIRMATION, reason=appointment.appointment_id,
                                    patient_id=appointment.patient_id, desired=utcnow(),
                                    context={"starts_at": iso(starts_at)}, appointment_id=appointment.appointment_id)
        self._queue_reminders(uow, event, appointment)
        self._forward(uow, event)

    @consumes("sessions", "course.booked")
    def on_course_booked(self, uow, event):
        """One confirmation listing every date of a booked course."""
        data = event.data
        appointments = [{"appointment_id": entry["appointment_id"], "starts_at": entry["starts_at"]}
                        for entry in data.get("appointments") or ()]
        self._queue_for_patient(uow, event, Kind.COURSE_CONFIRMATION, reason=data["course_id"],
                                patient_id=data["patient_id"], desired=utcnow(),
                                context={"appointments": appointments})
        self._forward(uow, event)

    @consumes("sessions", "appointment.rescheduled")
    def on_appointment_rescheduled(self, uow, event):
        data = event.data
        appointment = uow.session.get(Appointment, data["appointment_id"], with_for_update=True)
        if appointment is not None and (appointment.cancelled or not domain.is_newer(event.occurred_at, appointment.as_of)):
            self._forward(uow, event)
            return
        starts_at = parse_instant(data["starts_at"])
        if appointment is None:
            appointment = Appointment(appointment_id=data["appointment_id"], patient_id=data["patient_id"],
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

    @consumes("sessions", "appointment.cancelled")
    def on_appointment_cancelled(self, uow, event):
        data = event.data
        appointment = uow.session.get(Appointment, data["appointment_id"], with_for_update=True)
        starts_at = parse_instant(data.get("starts_at"))
        # A cancellation is final whatever order the events arrive in: a
        # late "scheduled" then finds a newer fact and queues nothing.
        if appointment is None:
            appointment = Appointment(appointment_id=data["appointment_id"], patient_id=data["patient_id"],
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

    @consumes("sessions", "session.completed")
    def on_session_completed(self, uow, event):
        data = event.data
        settings = self.settings
        recipient = uow.session.get(Recipient, data["patient_id"])
        zone = self._zone(recipient)
        ended_at = parse_instant(data.get("ended_at")) or event.occurred_at
        late = domain.follow_up_too_late(ended_at, utcnow(), zone, settings.timing)
        self._queue_for_patient(uow, event, Kind.SESSION_FOLLOW_UP, reason=data["session_id"],
                                patient_id=data["patient_id"],
                                desired=domain.follow_up_time(ended_at, zone, settings.timing),
                                decision=domain.SendDecision(None, "the day after the session has passed") if late else None)
        self._forward(uow, event)

    # ------------------------------------------------------------ staff alerts

    @consumes("intake", "patient.risk_flagged")
    def on_patient_risk_flagged(self, uow, event):
        data = event.data
        self._queue_staff_alert(uow, event, Kind.STAFF_RISK_ALERT, reason=data.get("response_id") or event.event_id,
                                context={**data, "raised_at": iso(event.occurred_at)})
        self._forward(uow, event)

    @consumes("sessions", "session.vitals_alert")
    def on_session_vitals_alert(self, uow, event):
        self._queue_staff_alert(uow, event, Kind.STAFF_VITALS_ALERT, reason=event.event_id, context=event.data)
        self._forward(uow, event)

    # ------------------------------------------------------------ billing

    @consumes("billing", "invoice.issued")
    def on_invoice_issued(self, uow, event):
        self._queue_billing(uow, event, Kind.INVOICE_ISSUED, reason=event.data["invoice_id"])

    @consumes("billing", "payment.received")
    def on_payment_received(self, uow, event):
        if event.data.get("method") == "package_credit":
            # Billing settles package-covered lines itself when it issues the
            # invoice; the patient paid nothing then, so there is no receipt.
            self._forward(uow, event)
            return
        self._queue_billing(uow, event, Kind.PAYMENT_RECEIPT, reason=event.data["payment_id"])

    @consumes("billing", "invoice.overdue")
    def on_invoice_overdue(self, uow, event):
        # Billing reports an invoice overdue once per due date; a new due
        # date (a payment plan) is a new reason to remind.
        data = event.data
        self._queue_billing(uow, event, Kind.INVOICE_OVERDUE, reason=f"{data['invoice_id']}+{data.get('due_date')}")

    @consumes("billing", "refund.issued")
    def on_refund_issued(self, uow, event):
        self._queue_billing(uow, event, Kind.REFUND_ISSUED, reason=event.data["refund_id"])

    # ------------------------------------------------------------ delivery

    @configured_timer(interval=1, config_key="SCHEDULER_INTERVAL", section="NOTIFICATIONS")
    def deliver_due(self):
        """Claims due messages (skipping rows another replica holds) and
        sends them a few at a time; only due rows are read."""
        self._deliver_batch(urgent_only=False)

    @timer(interval=URGENT_SWEEP_SECONDS)
    def deliver_urgent(self):
        """Staff alerts must not wait behind a batch of confirmations: this
        sweep claims only urgent rows, a few times a second."""
        self._deliver_batch(urgent_only=True)

    def _deliver_batch(self, urgent_only: bool) -> None:
        settings = self.settings
        now = utcnow()
        with self.db.unit_of_work() as uow:
            ids = uow.session.execute(due_messages(now, settings.batch, urgent_only=urgent_only)).scalars().all()
            if ids:
                uow.session.execute(sa.update(Message).where(Message.notification_id.in_(ids))
                                    .values(claimed_until=now + settings.claim))
        if not ids:
            return
        pool = eventlet.GreenPool(settings.parallel)
        for notification_id in ids:
            pool.spawn_n(self._deliver_safely, notification_id)
        pool.waitall()

    def _deliver_safely(self, notification_id: str) -> None:
        try:
            self._deliver(notification_id)
        except Exception:
            # The claim lapses and the message is tried again; one broken
            # message must not stop the rest of the batch.
            log.exception("delivering notification %s failed", notification_id)

    def _deliver(self, notification_id: str) -> None:
        settings = self.settings
        with self.db.unit_of_work() as uow:
            message = uow.session.get(Message, notification_id, with_for_update=True)
            if message is None or message.status not in domain.PENDING:
                return
            prepared = self._prepare(uow, message, settings)
        if prepared is None:
            return
        # The send happens outside any transaction: the row stays claimed.
        outcome = prepared if isinstance(prepared, domain.Outcome) else self._send(notification_id, prepared)
        with self.db.unit_of_work() as uow:
            message = uow.session.get(Message, notification_id, with_for_update=True)
            self._record(uow, message, outcome, settings)
            counted = (message.channel, message.kind, message.status)
        # Counted once the outcome is committed.
        channel, kind, status = counted
        record_notification(channel, kind, "sent" if status == Status.SENT.value else "failed")
        if status in (Status.RETRYING.value, Status.DEAD.value):
            record_notification(channel, kind, status)

    def _prepare(self, uow, message: Message, settings: Settings):
        """The message ready to send, an ``Outcome`` for a failure found
        before sending, or None when it was skipped or deferred."""
        now = utcnow()
        kind, channel = Kind(message.kind), Channel(message.channel)
        sender = self.channels
        if message.recipient == "patient":
            recipient = uow.session.get(Recipient, message.patient_id)
            facts = recipient_facts(recipient)
            appointment = uow.session.get(Appointment, message.appointment_id) if message.appointment_id else None
            gate = domain.gate_patient_message(
                kind=kind, channel=channel, now=now, recipient=facts, timing=settings.timing, urgent=message.urgent,
                appointment=(domain.AppointmentFacts(parse_instant(appointment.starts_at), appointment.cancelled)
                             if appointment is not None else None),
                planned_starts_at=parse_instant(message.context.get("starts_at")),
            )
            if gate.action == "skip":
                self._settle(uow, message, Status.SKIPPED, gate.reason)
                return None
            if gate.action == "defer":
                message.due_at, message.claimed_until = gate.until, None
                self._log(uow, message, "deferred", f"{gate.reason}: until {iso(gate.until)}")
                return None
            if gate.action == "wait":
                return domain.Outcome(False, gate.reason)
            context = message.context
            if kind == Kind.COURSE_CONFIRMATION:
                context = {"appointments": self._course_as_it_stands(uow.session, context, now)}
                if not context["appointments"]:
                    self._settle(uow, message, Status.SKIPPED,
                                 "every appointment of the course was cancelled or has begun")
                    return None
            view = rendering.template_facts(kind, context, given_name=recipient.given_name,
                                            time_zone=facts.time_zone, clinic=settings.clinic,
                                            clinic_phone=settings.clinic_phone, now=now,
                                            link=self.self_report_link(context)
                                            if kind == Kind.SELF_REPORT_REQUEST else None)
            rendered = rendering.render(kind, channel, view)
            return Outgoing(channel, (facts.address(channel),), rendered.body, rendered.subject)
        if message.recipient == "webhook":
            return Outgoing(channel, (), json.dumps(message.context, sort_keys=True), target=message.target,
                            event_type=message.context.get("type"))
        view = rendering.template_facts(kind, message.context, given_name=None, time_zone="UTC",
                                        clinic=settings.clinic, clinic_phone=settings.clinic_phone, now=now)
        if channel == Channel.STAFF_WEBHOOK:
            return Outgoing(channel, (), rendering.staff_webhook_body(kind, message.notification_id, view),
                            target=message.target, event_type="staff_alert")
        if not sender.settings.staff_emails:
            return domain.Outcome(False, "no staff alert address configured (NOTIFICATIONS.STAFF_ALERT_EMAILS)",
                                  permanent=True)
        rendered = rendering.render(kind, channel, view)
        return Outgoing(channel, sender.settings.staff_emails, rendered.body, rendered.subject)

    def _send(self, notification_id: str, outgoing: Outgoing) -> domain.Outcome:
        sender = self.channels
        try:
            if outgoing.channel in (Channel.EMAIL, Channel.STAFF_EMAIL):
                return sender.email(list(outgoing.to), outgoing.subject or "", outgoing.body, notification_id)
            if outgoing.channel == Channel.SMS:
                return sender.sms(outgoing.to[0], outgoing.body, notification_id)
            return sender.webhook(sender.settings.subscriber(outgoing.target), outgoing.body, notification_id,
                                  outgoing.event_type or "")
        except Exception as exc:  # a bug in a sender must still be recorded
            log.exception("sender failed for notification %s", notification_id)
            return domain.Outcome(False, f"{type(exc).__name__}")

    def _record(self, uow, message: Message, outcome: domain.Outcome, settings: Settings) -> None:
        now = utcnow()
        message.attempts += 1
        message.claimed_until = None
        after = domain.after_attempt(outcome, message.attempts, now, settings.retry)
        if after.status == Status.SENT:
            message.status, message.sent_at, message.last_error = Status.SENT.value, now, None
            self._log(uow, message, "sent", outcome.answer, attempt=message.attempts)
            uow.emit("notification.sent", {
                "notification_id": message.notification_id, "kind": message.kind, "channel": message.channel,
                "recipient": message.recipient, "patient_id": message.patient_id if message.recipient == "patient" else None,
                "dedupe_key": message.dedupe_key, "sent_at": iso(now),
            })
            log.info("notification %s sent (%s, %s)", message.notification_id, message.kind, message.channel)
            return
        message.last_error = outcome.answer[:500]
        self._log(uow, message, "failed", outcome.answer, attempt=message.attempts)
        if after.status == Status.DEAD:
            message.status = Status.DEAD.value
            self._log(uow, message, "dead", f"gave up after {message.attempts} attempt(s)")
        else:
            message.status, message.due_at = Status.RETRYING.value, after.retry_at
            self._log(uow, message, "retrying", f"next attempt at {iso(after.retry_at)}")
        uow.emit("notification.failed", {
            "notification_id": message.notification_id, "kind": message.kind, "channel": message.channel,
            "recipient": message.recipient, "patient_id": message.patient_id if message.recipient == "patient" else None,
            "attempts": message.attempts, "dead": after.status == Status.DEAD, "error": outcome.answer[:200],
        })
        log.warning("notification %s attempt %d failed (%s, %s)%s", message.notification_id, message.attempts,
                    message.kind, message.channel, "; now dead" if after.status == Status.DEAD else "")

    # ------------------------------------------------------------ RPC

    @rpc
    def get_preferences(self, patient_id):
        with self.db.unit_of_work() as uow:
            recipient = self._known_recipient(uow.session, patient_id)
            RecordAccess.record(uow, recipient.patient_id, "read_preferences")
            return schemas.preferences_view(recipient)

    @rpc
    def set_preferences(self, patient_id, preferences):
        wanted = parse(schemas.PreferencesInput, preferences)
        with self.db.unit_of_work() as uow:
            recipient = self._known_recipient(uow.session, patient_id, lock=True)
            RecordAccess.record(uow, recipient.patient_id, "preferences")
            if wanted.email is not None:
                recipient.email_enabled = wanted.email
            if wanted.sms is not None:
                recipient.sms_enabled = wanted.sms
            uow.session.flush()
            return schemas.preferences_view(recipient)

    @rpc
    def list_messages(self, criteria=None):
        """The delivery log, newest first, filtered by patient, appointment,
        status, kind or channel."""
        query = parse(schemas.MessageQuery, criteria or {})
        select = sa.select(Message)
        for column in ("patient_id", "appointment_id", "status", "kind", "channel"):
            value = getattr(query, column)
            if value is not None:
                select = select.where(getattr(Message, column) == value)
        with self.db.unit_of_work() as uow:
            session = uow.session
            if query.patient_id is not None:
                RecordAccess.record(uow, query.patient_id, "read_messages")
            total = session.execute(sa.select(sa.func.count()).select_from(select.subquery())).scalar_one()
            rows = session.execute(select.order_by(Message.created_at.desc(), Message.notification_id)
                                   .limit(query.limit).offset(query.offset)).scalars().all()
            return {"items": [schemas.message_view(m) for m in rows], "total": total,
                    "limit": query.limit, "offset": query.offset}

    @rpc
    def list_dead_messages(self, limit=20, offset=0):
        """Messages that will not be retried any more: for staff to act on."""
        return self.list_messages({"status": Status.DEAD.value, "limit": limit, "offset": offset})

    @rpc
    def get_message(self, notification_id):
        """One message with every logged step and the provider's answers."""
        with self.db.unit_of_work() as uow:
            session = uow.session
            message = self._message(session, notification_id)
            if message.patient_id:
                RecordAccess.record(uow, message.patient_id, "read_message")
            entries = session.execute(
                sa.select(DeliveryLogEntry).where(DeliveryLogEntry.notification_id == notification_id)
                .order_by(DeliveryLogEntry.id)
            ).scalars().all()
            return {**schemas.message_view(message), "log": [schemas.log_view(e) for e in entries]}

    @rpc
    def resend(self, notification_id, options=None):
        """Queue a dead, skipped or waiting message for another attempt now.
        A message already sent is refused: never twice for the same reason."""
        given = parse(schemas.ResendInput, options or {})
        with self.db.unit_of_work() as uow:
            message = self._message(uow.session, notification_id, lock=True)
            if message.patient_id:
                RecordAccess.record(uow, message.patient_id, "resend")
            refusal = domain.resend_allowed(Status(message.status))
            if refusal:
                raise Conflict(refusal)
            message.status = Status.QUEUED.value
            message.due_at, message.claimed_until = utcnow(), None
            message.attempts, message.last_error = 0, None
            message.urgent = message.urgent or given.urgent
            self._log(uow, message, "queued", "resend requested" + (" (urgent)" if given.urgent else ""),
                      actor=self.db.actor)
            uow.session.flush()
            return schemas.message_view(message)

    @rpc
    def export_fhir_communications(self, patient_id, limit=100, offset=0):
        """The messages sent (or owed) to a patient, oldest first, as a FHIR
        R4 Bundle (collection) of Communication resources, without any
        message body. Paged by ``limit`` (1-100) and ``offset``."""
        page = parse(schemas.MessageQuery, {"patient_id": require_id(patient_id, "patient_id"), "limit": limit,
                                            "offset": offset})
        to_patient = sa.select(Message).where(
            Message.patient_id == page.patient_id, Message.recipient == "patient",
            Message.channel.in_([c.value for c in domain.PATIENT_CHANNELS]))
        with self.db.unit_of_work() as uow:
            session = uow.session
            known = session.get(Recipient, page.patient_id) is not None or session.execute(
                to_patient.with_only_columns(Message.notification_id).limit(1)).first() is not None
            if not known:
                raise NotFound("notifications has no record of this patient")
            RecordAccess.record(uow, page.patient_id, "fhir_export")
            rows = session.execute(to_patient.order_by(Message.created_at, Message.notification_id)
                                   .limit(page.limit).offset(page.offset)).scalars().all()
            return fhir.communications_bundle(rows)

    @rpc
    def list_record_access(self, patient_id, limit=100, offset=0):
        """Who read or changed the patient's messages and preferences, newest first."""
        with self.db.read() as session:
            return RecordAccess.trail(session, require_id(patient_id, "patient_id"), *paging(limit, offset))

    # ------------------------------------------------------------ helpers

    @staticmethod
    def _zone(recipient: Recipient | None) -> str:
        return (recipient.time_zone if recipient is not None and recipient.time_zone else domain.DEFAULT_TIME_ZONE)

    def _apply_patient_details(self, uow, event) -> None:
        data = event.data
        recipient = self._recipient_for_update(uow, data["patient_id"])
        if not domain.is_newer(event.occurred_at, recipient.details_as_of):
            return
        recipient.mrn = data.get("mrn")
        recipient.given_name = data.get("given_name")
        recipient.email = data.get("email")
        recipient.phone = data.get("phone")
        recipient.time_zone = data.get("time_zone") or domain.DEFAULT_TIME_ZONE
        recipient.details_as_of = event.occurred_at

    def _recipient_for_update(self, uow, patient_id: str) -> Recipient:
        # Two first events about one patient (registration and a consent)
        # may race here: the insert that loses simply does nothing, and the
        # lock then orders the two updates.
        insert_ignoring_duplicates(uow.session, Recipient.__table__, unique="patient_id", values=dict(
            patient_id=patient_id, email_consent=False, sms_consent=False, email_enabled=True, sms_enabled=True,
            updated_at=utcnow()))
        return uow.session.get(Recipient, patient_id, with_for_update=True, populate_existing=True)

    def _known_recipient(self, session, patient_id, lock=False) -> Recipient:
        recipient = session.get(Recipient, str(patient_id), with_for_update=lock or None)
        if recipient is None:
            raise NotFound("notifications has no record of this patient")
        return recipient

    def _message(self, session, notification_id, lock=False) -> Message:
        message = session.get(Message, str(notification_id), with_for_update=lock or None)
        if message is None:
            raise NotFound("no such notification")
        return message

    def _queue(self, uow, event, *, kind: Kind, channel: Channel, recipient: str, reason: str, due_at: datetime,
               patient_id=None, appointment_id=None, target=None, context=None, urgent=False,
               status: Status = Status.QUEUED, detail: str | None = None, deferral: str | None = None) -> bool:
        """Insert the message unless its dedupe key exists; True if new."""
        values = dict(
            notification_id=new_id(), dedupe_key=domain.dedupe_key(reason, kind, channel, target),
            kind=kind.value, channel=channel.value, recipient=recipient, patient_id=patient_id,
            appointment_id=appointment_id, target=target, context=context or {}, urgent=urgent,
            status=status.value, due_at=due_at, attempts=0, source_event_id=event.event_id,
            created_at=utcnow(), updated_at=utcnow(),
        )
        if not insert_ignoring_duplicates(uow.session, Message.__table__, values, unique="dedupe_key"):
            return False
        uow.session.add(DeliveryLogEntry(notification_id=values["notification_id"], status=status.value,
                                         detail=detail or f"due {iso(due_at)}"))
        if deferral:
            # Its own step, so staff see why a message owed now goes out later.
            uow.session.add(DeliveryLogEntry(notification_id=values["notification_id"], status="deferred",
                                             detail=deferral[:500]))
        return True

    def _queue_for_patient(self, uow, event, kind: Kind, *, reason: str, patient_id: str, desired: datetime,
                           context=None, appointment_id=None, channels=domain.PATIENT_CHANNELS,
                           decision: domain.SendDecision | None = None) -> None:
        """One row per patient channel; consent and contact data are checked
        when it is due, so a consent given later still counts. Without a
        ``decision``, quiet hours decide when."""
        if decision is None:
            zone = self._zone(uow.session.get(Recipient, patient_id))
            decision = domain.when_to_send(desired, zone, self.settings.timing)
        if decision.send_at is None:
            log.info("%s for patient %s skipped: %s", kind.value, patient_id, decision.skip_reason)
        for channel in channels:
            if decision.send_at is None:
                self._queue(uow, event, kind=kind, channel=channel, recipient="patient", reason=reason,
                            due_at=desired, patient_id=patient_id, appointment_id=appointment_id, context=context,
                            status=Status.SKIPPED, detail=decision.skip_reason)
            else:
                self._queue(uow, event, kind=kind, channel=channel, recipient="patient", reason=reason,
                            due_at=decision.send_at, patient_id=patient_id, appointment_id=appointment_id,
                            context=context, deferral=decision.deferral)

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

    @staticmethod
    def _course_as_it_stands(session, context: dict, now: datetime) -> list[dict]:
        entries = [e for e in context.get("appointments") or () if isinstance(e, dict)]
        rows = session.execute(sa.select(Appointment).where(
            Appointment.appointment_id.in_([e.get("appointment_id") for e in entries]))).scalars()
        known = {row.appointment_id: domain.AppointmentFacts(parse_instant(row.starts_at), row.cancelled)
                 for row in rows}
        return domain.course_as_it_stands(entries, known, now)

    def _queue_staff_alert(self, uow, event, kind: Kind, *, reason: str, context: dict) -> None:
        """At once, day or night; by MRN only (the allow-list drops the rest)."""
        facts = {name: context.get(name) for name in rendering.ALLOWED_FACTS[kind]}
        channel_settings = self.channels.settings
        now = utcnow()
        common = dict(kind=kind, recipient="staff", reason=reason, due_at=now, context=facts, urgent=True,
                      patient_id=context.get("patient_id"))
        # With no staff channel configured at all, the email row still goes
        # dead visibly rather than the alert vanishing.
        if channel_settings.staff_emails or channel_settings.staff_webhook is None:
            self._queue(uow, event, channel=Channel.STAFF_EMAIL, **common)
        if channel_settings.staff_webhook is not None:
            self._queue(uow, event, channel=Channel.STAFF_WEBHOOK, target=channel_settings.staff_webhook.name,
                        **common)

    def _queue_billing(self, uow, event, kind: Kind, *, reason: str) -> None:
        facts = {name: event.data.get(name) for name in rendering.ALLOWED_FACTS[kind]}
        self._queue_for_patient(uow, event, kind, reason=reason, patient_id=event.data["patient_id"],
                                desired=utcnow(), context=facts)
        self._forward(uow, event)

    def _forward(self, uow, event) -> None:
        """Every subscriber that asked for this event type gets the envelope."""
        body = {**event.model_dump(mode="json"), "occurred_at": iso(event.occurred_at)}
        for subscriber in self.channels.settings.webhooks:
            if subscriber.wants(event.type):
                self._queue(uow, event, kind=Kind.WEBHOOK, channel=Channel.WEBHOOK, recipient="webhook",
                            reason=event.event_id, target=subscriber.name, due_at=utcnow(), context=body)

    def _cancel_pending(self, uow, appointment_id: str, reason: str, kinds=None) -> None:
        query = sa.select(Message).where(Message.appointment_id == appointment_id,
                                         Message.status.in_(domain.PENDING),
                                         Message.kind != Kind.APPOINTMENT_CANCELLED.value)
        if kinds is not None:
            query = query.where(Message.kind.in_([k.value for k in kinds]))
        for message in uow.session.execute(query.with_for_update()).scalars():
            self._settle(uow, message, Status.CANCELLED, reason)

    def _settle(self, uow, message: Message, status: Status, reason: str | None) -> None:
        message.status, message.claimed_until = status.value, None
        self._log(uow, message, status.value, reason)
        log.info("notification %s %s (%s, %s)", message.notification_id, status.value, message.kind, message.channel)

    @staticmethod
    def _log(uow, message: Message, status: str, detail: str | None, attempt: int | None = None,
             actor: str | None = None) -> None:
        uow.session.add(DeliveryLogEntry(notification_id=message.notification_id, status=status, attempt=attempt,
                                         detail=(detail or "")[:500] or None, actor=actor))


def due_messages(now: datetime, limit: int, urgent_only: bool = False) -> sa.Select:
    """The scheduler's only read: due, unclaimed rows through the
    ``(status, due_at)`` index, skipping rows another replica has locked;
    urgent ones first."""
    query = (
        sa.select(Message.notification_id)
        .where(Message.status.in_(domain.PENDING), Message.due_at <= now,
               sa.or_(Message.claimed_until.is_(None), Message.claimed_until < now))
        .order_by(Message.urgent.desc(), Message.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return query.where(Message.urgent.is_(True)) if urgent_only else query


def recipient_facts(recipient: Recipient | None) -> domain.RecipientFacts | None:
    # Consent can arrive before registration; without the details there is
    # nobody to send to yet.
    if recipient is None or recipient.details_as_of is None:
        return None
    return domain.RecipientFacts(
        time_zone=recipient.time_zone or domain.DEFAULT_TIME_ZONE, email=recipient.email, phone=recipient.phone,
        email_consent=recipient.email_consent, sms_consent=recipient.sms_consent,
        email_enabled=recipient.email_enabled, sms_enabled=recipient.sms_enabled,
    )

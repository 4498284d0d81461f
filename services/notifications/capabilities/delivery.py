"""The delivery pipeline: timers claim due messages, check consent, quiet
hours and the appointment as it stands, render and send each one outside
any transaction, and record the outcome, retrying with backoff until the
message is sent or dead."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

import eventlet
import sqlalchemy as sa
from nameko.timer import timer

from common.events import iso, utcnow
from common.observability import record_notification
from common.service import configured_timer
from services.notifications import domain, events, rendering
from services.notifications.capabilities.messages_owed import MessagesOwed
from services.notifications.capabilities.self_report import self_report_link
from services.notifications.dependencies import Settings
from services.notifications.domain import Channel, Kind, Status
from services.notifications.gate import AppointmentFacts, RecipientFacts, course_as_it_stands, gate_patient_message
from services.notifications.models import Appointment, Message, Recipient
from services.notifications.schemas import parse_instant

log = logging.getLogger(__name__)

URGENT_SWEEP_SECONDS = 0.25


@dataclass(frozen=True)
class Outgoing:
    """A message rendered and addressed, handed to a sender outside any transaction."""

    channel: Channel
    to: tuple[str, ...]
    body: str
    subject: str | None = None
    target: str | None = None
    event_type: str | None = None



class Delivery(MessagesOwed):

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
            gate = gate_patient_message(
                kind=kind, channel=channel, now=now, recipient=facts, timing=settings.timing, urgent=message.urgent,
                appointment=(AppointmentFacts(parse_instant(appointment.starts_at), appointment.cancelled)
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
                                            link=self_report_link(self.config, context)
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
            uow.emit(events.NotificationSent(
                notification_id=message.notification_id, kind=message.kind, channel=message.channel,
                recipient=message.recipient, patient_id=message.patient_id if message.recipient == "patient" else None,
                dedupe_key=message.dedupe_key, sent_at=now,
            ))
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
        uow.emit(events.NotificationFailed(
            notification_id=message.notification_id, kind=message.kind, channel=message.channel,
            recipient=message.recipient, patient_id=message.patient_id if message.recipient == "patient" else None,
            attempts=message.attempts, dead=after.status == Status.DEAD, error=outcome.answer[:200],
        ))
        log.warning("notification %s attempt %d failed (%s, %s)%s", message.notification_id, message.attempts,
                    message.kind, message.channel, "; now dead" if after.status == Status.DEAD else "")

    @staticmethod
    def _course_as_it_stands(session, context: dict, now: datetime) -> list[dict]:
        entries = [e for e in context.get("appointments") or () if isinstance(e, dict)]
        rows = session.execute(sa.select(Appointment).where(
            Appointment.appointment_id.in_([e.get("appointment_id") for e in entries]))).scalars()
        known = {row.appointment_id: AppointmentFacts(parse_instant(row.starts_at), row.cancelled)
                 for row in rows}
        return course_as_it_stands(entries, known, now)



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


def recipient_facts(recipient: Recipient | None) -> RecipientFacts | None:
    # Consent can arrive before registration; without the details there is
    # nobody to send to yet.
    if recipient is None or recipient.details_as_of is None:
        return None
    return RecipientFacts(
        time_zone=recipient.time_zone or domain.DEFAULT_TIME_ZONE, email=recipient.email, phone=recipient.phone,
        email_consent=recipient.email_consent, sms_consent=recipient.sms_consent,
        email_enabled=recipient.email_enabled, sms_enabled=recipient.sms_enabled,
    )

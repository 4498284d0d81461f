"""What several notifications capabilities share: queueing a message owed
(one row per recipient, channel and reason, unique on its dedupe key),
forwarding an event to the webhook subscribers that asked for it, and
settling and logging a message. Every capability class inherits
``MessagesOwed``.

Handlers only queue; nothing is sent inside an event handler, so a
redelivered event or a second replica can never send twice (the dedupe key
is UNIQUE) and a slow SMTP server never holds up the broker."""
from __future__ import annotations

import logging
from datetime import datetime

from common.database import ServiceDatabase, insert_ignoring_duplicates
from common.events import iso, utcnow
from services.notifications import domain
from services.notifications.channels import Channels
from services.notifications.dependencies import Settings
from services.notifications.domain import Channel, Kind, Status
from services.notifications.models import DeliveryLogEntry, Message, Recipient, new_id

log = logging.getLogger(__name__)


class MessagesOwed:
    """Declared on ``NotificationsService``: ``db`` (the service's database),
    ``settings`` (timing, retries, the clinic's display name) and
    ``channels`` (the email, SMS and webhook senders and their settings)."""

    db: ServiceDatabase
    settings: Settings
    channels: Channels

    def _recipient_for_update(self, uow, patient_id: str) -> Recipient:
        # Two first facts about one patient (registration and a consent)
        # may race here: the insert that loses simply does nothing, and the
        # lock then orders the two updates.
        insert_ignoring_duplicates(uow.session, Recipient.__table__, unique="patient_id", values=dict(
            patient_id=patient_id, email_consent=False, sms_consent=False, email_enabled=True, sms_enabled=True,
            updated_at=utcnow()))
        return uow.session.get(Recipient, patient_id, with_for_update=True, populate_existing=True)

    @staticmethod
    def _zone(recipient: Recipient | None) -> str:
        return (recipient.time_zone if recipient is not None and recipient.time_zone else domain.DEFAULT_TIME_ZONE)

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

    def _forward(self, uow, event) -> None:
        """Every subscriber that asked for this event type gets the envelope."""
        body = event.body  # as it arrived: fields this service does not read are the subscriber's too
        for subscriber in self.channels.settings.webhooks:
            if subscriber.wants(event.type):
                self._queue(uow, event, kind=Kind.WEBHOOK, channel=Channel.WEBHOOK, recipient="webhook",
                            reason=event.event_id, target=subscriber.name, due_at=utcnow(), context=body)

    def _settle(self, uow, message: Message, status: Status, reason: str | None) -> None:
        message.status, message.claimed_until = status.value, None
        self._log(uow, message, status.value, reason)
        log.info("notification %s %s (%s, %s)", message.notification_id, status.value, message.kind, message.channel)

    @staticmethod
    def _log(uow, message: Message, status: str, detail: str | None, attempt: int | None = None,
             actor: str | None = None) -> None:
        uow.session.add(DeliveryLogEntry(notification_id=message.notification_id, status=status, attempt=attempt,
                                         detail=(detail or "")[:500] or None, actor=actor))

"""What staff read and do with the messages: the delivery log, dead
messages, one message with its every step, a resend, the FHIR export of what
a patient was sent, and who read a patient's messages."""
from __future__ import annotations

import sqlalchemy as sa

from common.errors import Conflict, NotFound
from common.events import utcnow
from common.handlers import rpc
from common.validation import paging, parse, require_id
from services.notifications import domain, fhir, schemas
from services.notifications.capabilities.messages_owed import MessagesOwed
from services.notifications.domain import Status
from services.notifications.models import DeliveryLogEntry, Message, Recipient, RecordAccess


class DeliveryLog(MessagesOwed):

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

    def _message(self, session, notification_id, lock=False) -> Message:
        message = session.get(Message, str(notification_id), with_for_update=lock or None)
        if message is None:
            raise NotFound("no such notification")
        return message

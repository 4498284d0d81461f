"""Two-way SMS: the SMS provider's inbound webhook (``POST /sms/inbound`` on
this service's own HTTP port), and the pre-visit message the patient
answers through it.

A text is read, never kept: the inbound_sms row holds what it was read as
(a keyword, YES, NO or other) and what came of it. STOP and START go to
intake, which keeps the consents (``sms.keyword_received``); the change
comes back as intake's ``consent.recorded`` like any other. HELP, STOP and
START are answered at once, and a reply to the pre-visit message becomes
``previsit.reply_received`` for sessions. An unknown number gets nothing."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import sqlalchemy as sa
from nameko.web.handlers import http
from pydantic import ValidationError

from common.database import insert_ignoring_duplicates
from common.engines import is_outage
from common.events import utcnow
from common.service import json_response, problem_response as problem
from common.validation import validation_failed
from services.notifications import domain, events, two_way_sms
from services.notifications.capabilities.messages_owed import MessagesOwed
from services.notifications.domain import Channel, Kind, Status
from services.notifications.models import Appointment, InboundMessage, Message, Recipient, RecordAccess, new_id
from services.notifications.two_way_sms import Keyword

log = logging.getLogger(__name__)

# Who the audit trail names for what a patient does by text.
PATIENT_BY_SMS = "patient (sms)"
REPLIES = {Keyword.STOP: Kind.SMS_OPT_OUT_CONFIRMATION, Keyword.START: Kind.SMS_OPT_IN_CONFIRMATION,
           Keyword.HELP: Kind.SMS_HELP_REPLY}
OUTCOMES = {Keyword.STOP: "consent_withdrawal_requested", Keyword.START: "consent_restore_requested",
            Keyword.HELP: "help_answered"}


@dataclass(frozen=True)
class InboundCause:
    """What a reply is queued for, where an event handler has its event."""

    event_id: str


class InboundSmsWebhook(MessagesOwed):

    @http("POST", "/sms/inbound")
    def receive_sms(self, request):
        """The provider's webhook: 200 once a text is taken (whatever it
        said), 401 for a missing or bad signature or a stale timestamp, 409
        for a message id already taken, 422 for a body that is not an
        inbound SMS, 503 when the database is away (the provider retries)."""
        try:
            return self._receive(request)
        except Exception as exc:  # noqa: BLE001 - the text must not reach nameko's error log
            if is_outage(exc):
                log.warning("inbound SMS not taken: the database is unavailable (%s)", type(exc).__name__)
                return problem(503, "Unavailable", "try again shortly", "service_unavailable",
                               {"Retry-After": "30"})
            log.error("inbound SMS not taken: %s", type(exc).__name__)
            return problem(500, "Internal error", "the message could not be taken", "internal_error")

    def _receive(self, request):
        settings = self.settings.inbound
        if not settings.secret:
            log.warning("inbound SMS refused: NOTIFICATIONS.SMS_WEBHOOK_SECRET is not set")
            return problem(503, "Inbound SMS not configured", "the webhook secret is not set", "not_configured")
        raw = request.get_data(cache=False)
        if not two_way_sms.signed_by_provider(settings, request.headers.get(two_way_sms.TIMESTAMP_HEADER),
                                              request.headers.get(two_way_sms.SIGNATURE_HEADER), raw):
            log.warning("inbound SMS refused: missing or bad signature, or a stale timestamp")
            return problem(401, "Unauthorized", "the request is not signed by the SMS provider, or too old",
                           "signature_invalid")
        try:
            text = two_way_sms.InboundSms.model_validate(json.loads(raw))
        except (ValueError, ValidationError) as exc:
            # The fields and what is wrong with them, never their values.
            errors = validation_failed(exc).details if isinstance(exc, ValidationError) else []
            return problem(422, "Invalid request", "not an inbound SMS (JSON)", "validation_failed", errors=errors)
        keyword = two_way_sms.classify(text.body)
        with self.db.unit_of_work() as uow:
            uow.actor = PATIENT_BY_SMS
            inbound_id, now = new_id(), utcnow()
            taken = insert_ignoring_duplicates(uow.session, InboundMessage.__table__, unique="provider_message_id",
                                               values=dict(inbound_id=inbound_id, provider_message_id=text.message_id,
                                                           received_at=now, keyword=keyword.value,
                                                           outcome="unmatched", patient_ids=[]))
            if not taken:
                log.warning("inbound SMS refused: its message id was already taken (a replay)")
                return problem(409, "Already received", "this message id was taken before; nothing was done",
                               "replayed")
            inbound = uow.session.get(InboundMessage, inbound_id)
            patients = self._patients_with_number(uow.session, text.sender)
            inbound.patient_ids = patients
            if not patients:
                inbound.outcome, inbound.sender_hint = "unknown_sender", two_way_sms.sender_hint(text.sender)
                log.info("inbound SMS %s from a number no patient has: not answered", inbound_id)
            elif keyword in REPLIES:
                self._keyword(uow, inbound, keyword, patients, now)
            else:
                self._previsit_reply(uow, inbound, keyword, patients, now)
        return json_response(200, {"status": "received"})

    def _keyword(self, uow, inbound: InboundMessage, keyword: Keyword, patients: list[str], now) -> None:
        for patient_id in patients:
            RecordAccess.record(uow, patient_id, f"sms_{keyword.value}_received")
            if keyword == Keyword.STOP:
                self._stop_texts_now(uow, patient_id, now)
            if keyword in two_way_sms.CONSENT_KEYWORDS:
                uow.emit(events.SmsKeywordReceived(inbound_id=inbound.inbound_id, patient_id=patient_id,
                                                   keyword=keyword.value, received_at=now))
        # One answer to the number, however many patients share it; sent
        # even though the consent is being withdrawn (the last message).
        self._queue(uow, InboundCause(inbound.inbound_id), kind=REPLIES[keyword], channel=Channel.SMS,
                    recipient="patient", reason=inbound.inbound_id, due_at=now, patient_id=patients[0], urgent=True)
        inbound.outcome = OUTCOMES[keyword]
        log.info("inbound SMS %s: %s", inbound.inbound_id, keyword.value)

    def _stop_texts_now(self, uow, patient_id: str, at) -> None:
        """A STOP takes effect at once, here: a text already due must not
        leave in the moment before intake, the record of consent, says the
        consent is withdrawn (its consent.recorded, later than this, agrees).
        A START waits for intake's grant: a second's delay in resuming
        texts harms no one."""
        recipient = self._recipient_for_update(uow, patient_id)
        if domain.is_newer(at, recipient.sms_consent_as_of):
            recipient.sms_consent, recipient.sms_consent_as_of = False, at

    def _previsit_reply(self, uow, inbound: InboundMessage, keyword: Keyword, patients: list[str], now) -> None:
        asked = uow.session.execute(
            sa.select(Message.patient_id, Message.appointment_id)
            .join(Appointment, Appointment.appointment_id == Message.appointment_id)
            .where(Message.kind == Kind.PREVISIT_INSTRUCTIONS.value, Message.channel == Channel.SMS.value,
                   Message.status == Status.SENT.value, Message.patient_id.in_(patients),
                   Appointment.cancelled.is_(False), Appointment.starts_at > now)
            .order_by(Message.sent_at.desc()).limit(1)).first()
        if asked is None:
            for patient_id in patients:
                RecordAccess.record(uow, patient_id, "sms_unmatched_received")
            log.info("inbound SMS %s: no pre-visit message awaits an answer; not answered", inbound.inbound_id)
            return
        patient_id, appointment_id = asked
        answer = two_way_sms.previsit_answer(keyword)
        RecordAccess.record(uow, patient_id, "previsit_reply_received")
        uow.emit(events.PreVisitReplyReceived(reply_id=inbound.inbound_id, appointment_id=appointment_id,
                                              patient_id=patient_id, answer=answer, received_at=now))
        inbound.outcome, inbound.appointment_id = "previsit_reply", appointment_id
        log.info("inbound SMS %s: pre-visit reply %s", inbound.inbound_id, answer)

    @staticmethod
    def _patients_with_number(session, number: str) -> list[str]:
        return list(session.execute(
            sa.select(Recipient.patient_id).where(Recipient.phone == number, Recipient.details_as_of.is_not(None))
            .order_by(Recipient.patient_id)).scalars())

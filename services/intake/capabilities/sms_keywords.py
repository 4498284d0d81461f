"""The carrier keywords a patient texts, applied to the consents intake
keeps: STOP withdraws the SMS consent, START restores it. Notifications
reads the text and says which (``sms.keyword_received``); intake changes
the consent record, audits it and says so with ``consent.recorded``, which
notifications' own copy of the consents follows like any other change.

Texts may be handled out of order (a retry, several replicas): a START
older than the last withdrawal, or a STOP older than a START that restored
the consent, changes nothing. A STOP is otherwise always honoured, even
against a consent staff recorded moments later."""
from __future__ import annotations

import logging

import sqlalchemy as sa

from common.events import as_utc
from common.handlers import consumes
from services.intake import events
from services.intake.capabilities.records import Records
from services.intake.models import Consent
from services.intake.schemas import consent_facts
from services.notifications.events import SmsKeywordReceived

log = logging.getLogger(__name__)

# Who the consent record and the audit trail name for a texted keyword.
PATIENT_BY_SMS = "patient (sms keyword)"
# How a consent restored by a texted START was given.
BY_TEXT = "sms_keyword"


class SmsKeywords(Records):

    @consumes(SmsKeywordReceived)
    def on_sms_keyword_received(self, uow, event):
        data = event.data
        uow.actor = PATIENT_BY_SMS
        record = self._patient(uow.session, data.patient_id, lock=True)  # NotFound: dead-lettered
        if data.keyword == "stop":
            self._withdraw(uow, record, data)
        else:
            self._restore(uow, record, data)

    def _withdraw(self, uow, record, data) -> None:
        current = self._active_consent(uow.session, record, "sms")
        if current is not None and current.method == BY_TEXT and as_utc(current.given_at) > data.received_at:
            # Restored by a START the patient texted after this STOP.
            self._audit(uow, record, "sms_stop_superseded")
            return
        if current is None:
            self._audit(uow, record, "sms_stop_no_consent_in_force")
            log.info("STOP for patient %s: no SMS consent in force to withdraw", record.patient_id)
            return
        current.withdrawn_at, current.withdrawn_by = data.received_at, PATIENT_BY_SMS
        self._audit(uow, record, "consent_withdrawal")
        uow.emit(events.ConsentRecorded(**consent_facts(record, current)))

    def _restore(self, uow, record, data) -> None:
        if self._active_consent(uow.session, record, "sms") is not None:
            self._audit(uow, record, "sms_start_consent_in_force")
            return
        last_withdrawal = uow.session.execute(
            sa.select(sa.func.max(Consent.withdrawn_at))
            .where(Consent.patient_number == record.number, Consent.kind == "sms")).scalar_one_or_none()
        if last_withdrawal is not None and as_utc(last_withdrawal) > data.received_at:
            # A STOP sent after this START is already applied.
            self._audit(uow, record, "sms_start_superseded")
            return
        # The patient's own text from the number on record is an express
        # request to be texted: the consent names how it was given.
        restored = Consent(patient_number=record.number, kind="sms", given_at=data.received_at, method=BY_TEXT,
                           recorded_by=PATIENT_BY_SMS)
        uow.session.add(restored)
        uow.session.flush()
        self._audit(uow, record, "consent")
        uow.emit(events.ConsentRecorded(**consent_facts(record, restored)))

"""Consents (treatment, email, SMS and the rest), given and withdrawn, and
the patient's medical history."""
from __future__ import annotations

from common import idempotency
from common.etag import check_if_match
from common.errors import NotFound
from common.events import utcnow
from common.handlers import rpc
from common.validation import parse
from services.intake import events, schemas
from services.intake.capabilities.records import Records
from services.intake.models import Consent, MedicalHistory, RecordAccess
from services.intake.schemas import consent_facts, consent_view, history_view


class ConsentsAndHistory(Records):

    @rpc
    def record_consent(self, patient_id, consent, idempotency_key=None):
        given = parse(schemas.ConsentInput, consent)
        with self.db.unit_of_work() as uow:
            claim = idempotency.claim(uow, "record_consent", idempotency_key, patient_id, given)
            if claim.replayed:
                RecordAccess.record(uow, patient_id, "consent_replayed")
                return claim.answer
            record = self._patient(uow.session, patient_id)
            current = self._active_consent(uow.session, record, given.kind)
            if current is None:
                current = Consent(patient_number=record.number, kind=given.kind,
                                  given_at=given.given_at or utcnow(), method=given.method,
                                  recorded_by=self.db.actor)
                uow.session.add(current)
                uow.session.flush()
            # Recording a consent that is already in force is a no-op, so a
            # retried request does not create a second one.
            self._audit(uow, record, "consent")
            uow.emit(events.ConsentRecorded(**consent_facts(record, current)))
            return claim.remember(consent_view(current))

    @rpc
    def withdraw_consent(self, patient_id, withdrawal):
        request = parse(schemas.ConsentWithdrawal, withdrawal)
        with self.db.unit_of_work() as uow:
            record = self._patient(uow.session, patient_id)
            current = self._active_consent(uow.session, record, request.kind)
            if current is None:
                raise NotFound(f"no {request.kind} consent in force for this patient")
            current.withdrawn_at = request.withdrawn_at or utcnow()
            current.withdrawn_by = self.db.actor
            self._audit(uow, record, "consent_withdrawal")
            uow.emit(events.ConsentRecorded(**consent_facts(record, current)))
            return consent_view(current)

    @rpc
    def list_consents(self, patient_id):
        with self.db.unit_of_work() as uow:
            record = self._patient(uow.session, patient_id)
            self._audit(uow, record, "read")
            return [consent_view(c) for c in self._consents(uow.session, record, include_withdrawn=True)]

    # --------------------------------------------------------- medical history

    @rpc
    def record_medical_history(self, patient_id, history, if_match=None):
        given = parse(schemas.MedicalHistoryInput, history)
        with self.db.unit_of_work() as uow:
            record = self._patient(uow.session, patient_id, lock=if_match is not None)
            if if_match is not None:
                current = self._current_history(uow.session, record)
                check_if_match(if_match, history_view(current) if current is not None else None)
            entry = MedicalHistory(patient_number=record.number, recorded_by=self.db.actor,
                                   **given.model_dump(mode="json", exclude={"last_myocardial_infarction"}),
                                   last_myocardial_infarction=given.last_myocardial_infarction)
            uow.session.add(entry)
            uow.session.flush()
            self._audit(uow, record, "medical_history")
            return history_view(entry)

    @rpc
    def get_medical_history(self, patient_id):
        with self.db.unit_of_work() as uow:
            record = self._patient(uow.session, patient_id)
            self._audit(uow, record, "read")
            entry = self._current_history(uow.session, record)
            if entry is None:
                raise NotFound("no medical history recorded for this patient")
            return history_view(entry)

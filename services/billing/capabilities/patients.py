"""Billing's copy of each patient, kept from intake's events for the
superbill (name, date of birth, MRN, diagnosis codes), and the audit trail
of who read or changed a patient's billing record."""
from __future__ import annotations

from common.events import as_utc
from common.handlers import consumes, rpc
from common.validation import paging, require_id
from services.intake.events import PatientRegistered, PatientUpdated
from services.billing.capabilities.ledger import NEVER, Ledger
from services.billing.models import RecordAccess


class Patients(Ledger):

    @consumes(PatientRegistered)
    def on_patient_registered(self, uow, event):
        self._remember_patient(uow.session, event)

    @consumes(PatientUpdated)
    def on_patient_updated(self, uow, event):
        self._remember_patient(uow.session, event)

    @rpc
    def list_record_access(self, patient_id, limit=100, offset=0):
        """Who read or changed the patient's billing record, newest first."""
        with self.db.read() as session:
            return RecordAccess.trail(session, require_id(patient_id, "patient_id"), *paging(limit, offset))

    def _remember_patient(self, session, event) -> None:
        facts = event.data
        record = self._patient_copy(session, facts.patient_id)
        if as_utc(record.facts_as_of) >= event.occurred_at:
            return  # an older fact arriving late
        record.mrn = facts.mrn or record.mrn
        record.given_name, record.family_name = facts.given_name, facts.family_name
        record.date_of_birth = facts.date_of_birth
        record.facts_as_of = event.occurred_at
        if as_utc(record.diagnoses_as_of or NEVER) < event.occurred_at:
            record.diagnosis_codes = [code.upper() for code in facts.diagnosis_codes]
            record.diagnoses_as_of = event.occurred_at

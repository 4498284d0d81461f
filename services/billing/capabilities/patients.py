"""Billing's copy of each patient, kept from intake's events for the
superbill (name, date of birth, MRN, diagnosis codes), and the audit trail
of who read or changed a patient's billing record."""
from __future__ import annotations

import sqlalchemy as sa

from common.database import upsert_if_newer
from common.handlers import consumes, rpc
from common.validation import paging, require_id
from services.intake.events import PatientRegistered, PatientUpdated
from services.billing.capabilities.ledger import Ledger
from services.billing.models import BillingPatient, RecordAccess


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
        upsert_if_newer(session, BillingPatient.__table__, {
            "patient_id": facts.patient_id, "mrn": facts.mrn or None, "given_name": facts.given_name,
            "family_name": facts.family_name, "date_of_birth": facts.date_of_birth,
            "facts_as_of": event.occurred_at, "diagnosis_codes": [code.upper() for code in facts.diagnosis_codes],
            "diagnoses_as_of": event.occurred_at,
        }, key="patient_id", as_of="facts_as_of", keep_when_missing=("mrn",), also_set=_diagnoses_unless_newer_stored)


def _diagnoses_unless_newer_stored(excluded) -> dict:
    # The stored diagnoses may come from a later fact than these details.
    patients = BillingPatient.__table__
    older = sa.or_(patients.c.diagnoses_as_of.is_(None), patients.c.diagnoses_as_of < excluded.facts_as_of)
    return {"diagnosis_codes": sa.case((older, excluded.diagnosis_codes), else_=patients.c.diagnosis_codes),
            "diagnoses_as_of": sa.case((older, excluded.facts_as_of), else_=patients.c.diagnoses_as_of)}

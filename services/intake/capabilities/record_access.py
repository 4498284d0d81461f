"""Who read or changed a patient's record, and the record as FHIR R4."""
from __future__ import annotations

import sqlalchemy as sa

from common.handlers import rpc
from common.validation import paging
from services.intake import fhir
from services.intake.capabilities.records import Records
from services.intake.models import QuestionnaireResponse, RecordAccess


class PatientRecordAccess(Records):

    @rpc
    def list_record_access(self, patient_id, limit=100, offset=0):
        """The audit trail of a patient's record, newest first."""
        with self.db.read() as session:
            record = self._patient(session, patient_id)
            return RecordAccess.trail(session, record.patient_id, *paging(limit, offset))

    @rpc
    def export_fhir(self, patient_id):
        """A FHIR R4 Bundle (collection) of the patient, questionnaire
        responses and their score observations."""
        with self.db.unit_of_work() as uow:
            record = self._patient(uow.session, patient_id)
            self._audit(uow, record, "fhir_export")
            responses = uow.session.execute(
                sa.select(QuestionnaireResponse).where(QuestionnaireResponse.patient_number == record.number)
                .order_by(QuestionnaireResponse.completed_at)
            ).scalars().all()
            return fhir.patient_bundle(record, responses)

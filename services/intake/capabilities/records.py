"""What several intake capabilities share: finding a patient's record and
auditing each read or write of it, and the consents, medical history and
questionnaire scores in force. Every capability class inherits ``Records``.

Each RPC method validates its input, applies the rules in ``domain`` inside
one unit of work, and returns plain JSON-able dicts."""
from __future__ import annotations

import sqlalchemy as sa

from common.database import ServiceDatabase
from common.errors import NotFound
from common.events import iso
from common.validation import require_id
from services.intake import domain
from services.intake.models import Consent, MedicalHistory, Patient, QuestionnaireResponse, RecordAccess
from services.intake.schemas import consent_summary, patient_view


class Records:
    """Declared on ``IntakeService``: ``db`` (the service's database) and
    ``rules`` (the contraindication screening rules and score cut-offs)."""

    db: ServiceDatabase
    rules: domain.ScreeningRules

    def _patient(self, session, patient_id, lock: bool = False) -> Patient:
        require_id(patient_id, "patient_id")
        if lock:
            # The row alone (the eager join to the intake would make FOR
            # UPDATE lock its nullable side), before it is read.
            session.execute(sa.select(Patient.patient_id).where(Patient.patient_id == patient_id).with_for_update())
        record = session.execute(sa.select(Patient).where(Patient.patient_id == patient_id)
                                 ).unique().scalar_one_or_none()
        if record is None:
            raise NotFound(f"no patient {patient_id}")
        return record

    def _patient_answer(self, session, record: Patient) -> dict:
        """What a read of the patient answers, and so what its ETag covers."""
        view = patient_view(record)
        view["consents"] = consent_summary(self._consents(session, record))
        return view

    def _audit(self, uow, record: Patient, action: str) -> None:
        RecordAccess.record(uow, record.patient_id, action)

    def _consents(self, session, record, include_withdrawn=False):
        query = sa.select(Consent).where(Consent.patient_number == record.number)
        if not include_withdrawn:
            query = query.where(Consent.withdrawn_at.is_(None))
        return session.execute(query.order_by(Consent.given_at)).scalars().all()

    def _active_consent(self, session, record, kind):
        return session.execute(
            sa.select(Consent).where(Consent.patient_number == record.number, Consent.kind == kind,
                                     Consent.withdrawn_at.is_(None))
        ).scalars().first()

    def _current_history(self, session, record):
        return session.execute(
            sa.select(MedicalHistory).where(MedicalHistory.patient_number == record.number)
            .order_by(MedicalHistory.recorded_at.desc()).limit(1)
        ).scalars().first()

    def _latest_scores(self, session, record) -> dict[str, QuestionnaireResponse]:
        rows = session.execute(
            sa.select(QuestionnaireResponse).where(QuestionnaireResponse.patient_number == record.number)
            .order_by(QuestionnaireResponse.completed_at)
        ).scalars().all()
        return {row.instrument: row for row in rows}

    def _score_facts(self, session, record) -> dict:
        return {code: {"total": r.total, "band": r.band, "completed_at": iso(r.completed_at)}
                for code, r in self._latest_scores(session, record).items()}

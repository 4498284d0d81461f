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
from services.intake.models import Consent, IntakeCase, MedicalHistory, Patient, QuestionnaireResponse, RecordAccess
from services.intake.schemas import consent_summary, granted_consents, patient_view


def _patient_row() -> sa.Select:
    """A patient's columns and intake status, by ``patient_id``."""
    patients, cases = Patient.__table__, IntakeCase.__table__
    return (sa.select(patients, cases.c.status.label("intake_status"))
            .outerjoin(cases, cases.c.patient_number == patients.c.number)
            .where(patients.c.patient_id == sa.bindparam("patient_id")))


def _granted_kinds(number) -> sa.Select:
    consents = Consent.__table__
    return sa.select(consents.c.kind).where(consents.c.patient_number == number, consents.c.withdrawn_at.is_(None))


def _audited_patient_read() -> sa.Select:
    """On PostgreSQL, the whole audited read of a patient in one statement:
    the patient, the consents in force and the audit row."""
    found = _patient_row().cte("found")
    granted = sa.func.array(_granted_kinds(found.c.number).scalar_subquery()).label("granted")
    return sa.select(found, granted).add_cte(RecordAccess.along(found, "read"))


# Built once: the statement cache then finds each compiled form at once.
PATIENT_ROW = _patient_row()
AUDITED_PATIENT_READ = _audited_patient_read()


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

    def _read_patient(self, uow, patient_id) -> dict:
        """A patient's record as ``get_patient`` answers it, audited as a
        read, in one round trip on PostgreSQL (three elsewhere)."""
        require_id(patient_id, "patient_id")
        if uow.session.get_bind().dialect.name == "postgresql":
            row = uow.session.execute(AUDITED_PATIENT_READ,
                                      {"patient_id": patient_id, **RecordAccess.along_parameters(uow)}).first()
            granted = row.granted if row is not None else ()
        else:
            row = uow.session.execute(PATIENT_ROW, {"patient_id": patient_id}).first()
            if row is not None:
                self._audit(uow, row, "read")
                granted = uow.session.execute(_granted_kinds(row.number)).scalars().all()
        if row is None:
            raise NotFound(f"no patient {patient_id}")
        return {**patient_view(row), "consents": granted_consents(granted)}

    def _patient_answer(self, session, record: Patient) -> dict:
        """What a read of the patient answers, and so what its ETag covers."""
        view = patient_view(record)
        view["consents"] = consent_summary(self._consents(session, record))
        return view

    def _audit(self, uow, record, action: str) -> None:
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

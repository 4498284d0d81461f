"""Registering, changing, reading and finding patients."""
from __future__ import annotations

import sqlalchemy as sa

from common import idempotency
from common.etag import check_if_match
from common.errors import ValidationFailed
from common.events import utcnow
from common.handlers import rpc
from common.validation import parse
from services.intake import domain, events, schemas
from services.intake.capabilities.records import Records
from services.intake.models import IntakeCase, Patient, RecordAccess, new_id
from services.intake.schemas import mrn_number, patient_facts, patient_view


REGISTERED = domain.IntakeStatus.REGISTERED.value


def _registration() -> sa.Select:
    """On PostgreSQL, a new patient, its intake case and the audit row of
    its creation, written by one statement that answers the new row."""
    patients, cases = Patient.__table__, IntakeCase.__table__
    given = {c.name: sa.bindparam(c.name, type_=c.type) for c in patients.c if c.name != "number"}
    new = sa.insert(patients).values(given).returning(*patients.c).cte("new_patient")
    case = sa.insert(cases).from_select(
        ["patient_number", "status"], sa.select(new.c.number, sa.literal(REGISTERED, sa.String))).cte("new_case")
    return (sa.select(new, sa.literal(REGISTERED, sa.String).label("intake_status"))
            .add_cte(case).add_cte(RecordAccess.along(new, "create")))


# Built once: the statement cache then finds its compiled form at once.
REGISTRATION = _registration()


class Patients(Records):

    def _register(self, uow, fields: schemas.PatientFields):
        """The new patient's record (a row on PostgreSQL, else a
        ``Patient``), with its intake case and audit row written."""
        values = {**fields.model_dump(mode="json", exclude={"date_of_birth"}), "date_of_birth": fields.date_of_birth}
        if uow.session.get_bind().dialect.name == "postgresql":
            now = utcnow()
            return uow.session.execute(REGISTRATION, {**values, "patient_id": new_id(), "created_at": now,
                                                      "updated_at": now, **RecordAccess.along_parameters(uow)}).one()
        record = Patient(**values)
        record.intake = IntakeCase(status=REGISTERED)
        uow.session.add(record)
        uow.session.flush()
        self._audit(uow, record, "create")
        return record

    @rpc
    def register_patient(self, patient, idempotency_key=None):
        fields = parse(schemas.PatientFields, patient)
        with self.db.unit_of_work() as uow:
            claim = idempotency.claim(uow, "register_patient", idempotency_key, fields)
            if claim.replayed:
                RecordAccess.record(uow, claim.answer["patient_id"], "create_replayed")
                return claim.answer
            record = self._register(uow, fields)
            uow.emit(events.PatientRegistered(**patient_facts(record)))
            return claim.remember(patient_view(record))

    @rpc
    def update_patient(self, patient_id, changes, if_match=None):
        update = parse(schemas.PatientUpdate, changes)
        changed = update.model_dump(mode="json", exclude_unset=True)
        if not changed:
            raise ValidationFailed("no fields to change", [{"field": "", "message": "give at least one field"}])
        if update.date_of_birth is not None:
            changed["date_of_birth"] = update.date_of_birth
        with self.db.unit_of_work() as uow:
            record = self._patient(uow.session, patient_id, lock=if_match is not None)
            check_if_match(if_match, self._patient_answer(uow.session, record))
            for name, value in changed.items():
                setattr(record, name, value)
            uow.session.flush()
            self._audit(uow, record, "update")
            uow.emit(events.PatientUpdated(**patient_facts(record), changed=sorted(changed)))
            return patient_view(record)

    @rpc
    def get_patient(self, patient_id):
        with self.db.audited_read() as uow:
            return self._read_patient(uow, patient_id)

    @rpc
    def find_patients(self, criteria=None):
        search = parse(schemas.PatientSearch, criteria or {})
        query = sa.select(Patient)
        if search.name:
            for word in search.name.lower().split():
                pattern = f"%{word}%"
                query = query.where(sa.or_(
                    sa.func.lower(Patient.given_name).like(pattern),
                    sa.func.lower(Patient.family_name).like(pattern),
                ))
        if search.date_of_birth:
            query = query.where(Patient.date_of_birth == search.date_of_birth)
        if search.mrn:
            number = mrn_number(search.mrn)
            query = query.where(Patient.number == (number if number is not None else -1))
        with self.db.unit_of_work() as uow:
            total = uow.session.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
            records = uow.session.execute(
                query.order_by(Patient.family_name, Patient.given_name, Patient.number)
                .limit(search.limit).offset(search.offset)
            ).unique().scalars().all()
            for record in records:
                self._audit(uow, record, "search")
            return {"items": [patient_view(r) for r in records], "total": total,
                    "limit": search.limit, "offset": search.offset}

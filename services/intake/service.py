"""The intake service's entrypoints. Each RPC method validates its input,
applies the rules in ``domain`` inside one unit of work, and returns plain
JSON-able dicts. Every read or write of a patient's record is audited."""
from __future__ import annotations



import sqlalchemy as sa

from common import idempotency
from common.errors import NotFound, ValidationFailed
from common.events import iso, utcnow
from common.handlers import rpc
from common.service import ClinicService, ConfigSection
from common.validation import paging, parse, require_id
from services.intake import domain, fhir, schemas
from services.intake.capabilities import self_report
from services.intake.models import (
    Consent, IntakeCase, MedicalHistory, Patient, QuestionnaireResponse, RecordAccess, Screening,
)
from services.intake.schemas import (
    consent_facts, consent_summary, consent_view, history_view, intake_view, mrn_number,
    patient_facts, patient_view, questionnaire_view, screening_view,
)


class IntakeService(self_report.SelfReport, ClinicService):
    name = "intake"

    rules = ConfigSection("INTAKE", domain.ScreeningRules.from_config)

    # ---------------------------------------------------------------- patients

    @rpc
    def register_patient(self, patient, idempotency_key=None):
        fields = parse(schemas.PatientFields, patient)
        with self.db.unit_of_work() as uow:
            claim = idempotency.claim(uow, "register_patient", idempotency_key, fields)
            if claim.replayed:
                return claim.answer
            record = Patient(**fields.model_dump(mode="json", exclude={"date_of_birth"}),
                             date_of_birth=fields.date_of_birth)
            record.intake = IntakeCase(status=domain.IntakeStatus.REGISTERED.value)
            uow.session.add(record)
            uow.session.flush()
            self._audit(uow, record, "create")
            uow.emit("patient.registered", patient_facts(record))
            return claim.remember(patient_view(record))

    @rpc
    def update_patient(self, patient_id, changes):
        update = parse(schemas.PatientUpdate, changes)
        changed = update.model_dump(mode="json", exclude_unset=True)
        if not changed:
            raise ValidationFailed("no fields to change", [{"field": "", "message": "give at least one field"}])
        if update.date_of_birth is not None:
            changed["date_of_birth"] = update.date_of_birth
        with self.db.unit_of_work() as uow:
            record = self._patient(uow.session, patient_id)
            for name, value in changed.items():
                setattr(record, name, value)
            uow.session.flush()
            self._audit(uow, record, "update")
            uow.emit("patient.updated", {**patient_facts(record), "changed": sorted(changed)})
            return patient_view(record)

    @rpc
    def get_patient(self, patient_id):
        with self.db.unit_of_work() as uow:
            record = self._patient(uow.session, patient_id)
            self._audit(uow, record, "read")
            view = patient_view(record)
            view["consents"] = consent_summary(self._consents(uow.session, record))
            return view

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

    @rpc
    def list_record_access(self, patient_id, limit=100, offset=0):
        """The audit trail of a patient's record, newest first."""
        with self.db.read() as session:
            record = self._patient(session, patient_id)
            return RecordAccess.trail(session, record.patient_id, *paging(limit, offset))

    # ---------------------------------------------------------------- consents

    @rpc
    def record_consent(self, patient_id, consent, idempotency_key=None):
        given = parse(schemas.ConsentInput, consent)
        with self.db.unit_of_work() as uow:
            claim = idempotency.claim(uow, "record_consent", idempotency_key, patient_id, given)
            if claim.replayed:
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
            uow.emit("consent.recorded", consent_facts(record, current))
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
            uow.emit("consent.recorded", consent_facts(record, current))
            return consent_view(current)

    @rpc
    def list_consents(self, patient_id):
        with self.db.unit_of_work() as uow:
            record = self._patient(uow.session, patient_id)
            self._audit(uow, record, "read")
            return [consent_view(c) for c in self._consents(uow.session, record, include_withdrawn=True)]

    # --------------------------------------------------------- medical history

    @rpc
    def record_medical_history(self, patient_id, history):
        given = parse(schemas.MedicalHistoryInput, history)
        with self.db.unit_of_work() as uow:
            record = self._patient(uow.session, patient_id)
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

    # ---------------------------------------------------------- questionnaires

    @rpc
    def submit_questionnaire(self, patient_id, response, idempotency_key=None):
        given = parse(schemas.QuestionnaireInput, response)
        score = domain.score_questionnaire(
            given.instrument, given.answers,
            pcl5_cutoff=self.rules.pcl5_cutoff,
        )
        with self.db.unit_of_work() as uow:
            claim = idempotency.claim(uow, "submit_questionnaire", idempotency_key, patient_id, given)
            if claim.replayed:
                return claim.answer
            record = self._patient(uow.session, patient_id)
            entry = QuestionnaireResponse(
                patient_number=record.number, instrument=score.instrument, answers=list(given.answers),
                total=score.total, band=score.band, risk_flags=list(score.risk_flags),
                completed_at=given.completed_at or utcnow(), recorded_by=self.db.actor,
            )
            uow.session.add(entry)
            uow.session.flush()
            self._audit(uow, record, "questionnaire")
            if score.risk_flags:
                uow.emit("patient.risk_flagged", {
                    "patient_id": record.patient_id, "mrn": record.mrn,
                    "flags": list(score.risk_flags), "instrument": score.instrument,
                    "band": score.band, "response_id": entry.response_id,
                })
            return claim.remember(questionnaire_view(entry))

    @rpc
    def list_questionnaires(self, patient_id, instrument=None):
        with self.db.unit_of_work() as uow:
            record = self._patient(uow.session, patient_id)
            self._audit(uow, record, "read")
            query = sa.select(QuestionnaireResponse).where(QuestionnaireResponse.patient_number == record.number)
            if instrument:
                query = query.where(QuestionnaireResponse.instrument == instrument)
            rows = uow.session.execute(query.order_by(QuestionnaireResponse.completed_at)).scalars().all()
            return [questionnaire_view(r) for r in rows]

    # ----------------------------------------------------- the intake decision

    @rpc
    def submit_intake(self, patient_id):
        with self.db.unit_of_work() as uow:
            record = self._patient(uow.session, patient_id)
            case = record.intake
            done = {r.instrument for r in self._latest_scores(uow.session, record).values()}
            domain.check_can_submit(
                domain.IntakeStatus(case.status),
                treatment_consent=self._active_consent(uow.session, record, "treatment") is not None,
                has_history=self._current_history(uow.session, record) is not None,
                questionnaires=done,
            )
            case.status = domain.IntakeStatus.SUBMITTED.value
            case.submitted_at = utcnow()
            self._audit(uow, record, "intake_submitted")
            uow.emit("intake.submitted", {"patient_id": record.patient_id, "submitted_at": iso(case.submitted_at)})
            return intake_view(record)

    @rpc
    def screen_patient(self, patient_id, screening):
        vitals = parse(schemas.ScreeningInput, screening)
        with self.db.unit_of_work() as uow:
            record = self._patient(uow.session, patient_id)
            case = record.intake
            domain.check_can_screen(domain.IntakeStatus(case.status))
            history = self._current_history(uow.session, record)
            result = domain.screen_contraindications(domain.ScreeningFacts(
                on_date=utcnow().date(), systolic=vitals.systolic, diastolic=vitals.diastolic,
                conditions=frozenset(history.conditions),
                medications=tuple(m["name"] for m in history.medications),
                ketamine_hypersensitivity=history.ketamine_hypersensitivity,
                pregnant=history.pregnant, last_myocardial_infarction=history.last_myocardial_infarction,
                weight_kg=record.weight_kg, height_cm=record.height_cm,
            ), self.rules)
            reasons = [{"code": r.code, "severity": r.severity, "message": r.message} for r in result.reasons]
            entry = Screening(patient_number=record.number, systolic=vitals.systolic, diastolic=vitals.diastolic,
                              outcome=result.outcome.value, reasons=reasons, screened_by=self.db.actor)
            uow.session.add(entry)
            uow.session.flush()
            case.status = domain.IntakeStatus.SCREENED.value
            case.screening_id = entry.screening_id
            case.screening_outcome = result.outcome.value
            self._audit(uow, record, "screening")
            uow.emit("intake.screened", {
                "patient_id": record.patient_id, "screening_id": entry.screening_id,
                "outcome": result.outcome.value,
                "reasons": [{"code": r["code"], "severity": r["severity"]} for r in reasons],
                "scores": self._score_facts(uow.session, record),
            })
            return screening_view(entry)

    @rpc
    def approve_intake(self, patient_id, approval):
        given = parse(schemas.ApprovalInput, approval)
        with self.db.unit_of_work() as uow:
            record = self._patient(uow.session, patient_id)
            case = record.intake
            clinician = self._decider(given.clinician)
            domain.check_can_approve(
                domain.IntakeStatus(case.status),
                domain.ScreeningOutcome(case.screening_outcome) if case.screening_outcome else None,
                relative_contraindications_reviewed=given.relative_contraindications_reviewed,
                treatment_consent=self._active_consent(uow.session, record, "treatment") is not None,
            )
            self._decide(case, "approve", clinician, given.reason)
            self._audit(uow, record, "intake_approved")
            uow.emit("intake.approved", {
                "patient_id": record.patient_id, "mrn": record.mrn,
                "decided_by": clinician, "decided_at": iso(case.decided_at),
                "screening_outcome": case.screening_outcome,
                "diagnosis_codes": list(record.diagnosis_codes or []),
                "primary_condition": record.primary_condition,
                "weight_kg": record.weight_kg,
                "scores": self._score_facts(uow.session, record),
            })
            return intake_view(record)

    @rpc
    def decline_intake(self, patient_id, decline):
        given = parse(schemas.DeclineInput, decline)
        with self.db.unit_of_work() as uow:
            record = self._patient(uow.session, patient_id)
            case = record.intake
            clinician = self._decider(given.clinician)
            domain.check_can_decline(domain.IntakeStatus(case.status))
            self._decide(case, "decline", clinician, given.reason)
            self._audit(uow, record, "intake_declined")
            # The reason is clinical free text: it stays in intake.
            uow.emit("intake.declined", {"patient_id": record.patient_id, "decided_by": clinician,
                                         "decided_at": iso(case.decided_at)})
            return intake_view(record)

    @rpc
    def get_intake(self, patient_id):
        with self.db.unit_of_work() as uow:
            record = self._patient(uow.session, patient_id)
            self._audit(uow, record, "read")
            view = intake_view(record)
            if record.intake.screening_id:
                view["screening"] = screening_view(uow.session.get(Screening, record.intake.screening_id))
            view["scores"] = self._score_facts(uow.session, record)
            return view

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

    # ----------------------------------------------------------------- helpers

    def _patient(self, session, patient_id) -> Patient:
        record = session.execute(sa.select(Patient).where(Patient.patient_id == require_id(patient_id, "patient_id"))
                                 ).unique().scalar_one_or_none()
        if record is None:
            raise NotFound(f"no patient {patient_id}")
        return record

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

    def _decider(self, named: str | None) -> str:
        clinician = named or self.db.actor
        if not clinician:
            raise ValidationFailed("the deciding clinician must be named",
                                   [{"field": "clinician", "message": "required when the caller is not identified"}])
        return clinician

    @staticmethod
    def _decide(case: IntakeCase, decision: str, clinician: str, reason: str) -> None:
        case.status = (domain.IntakeStatus.APPROVED if decision == "approve" else domain.IntakeStatus.DECLINED).value
        case.decision = decision
        case.decided_by = clinician
        case.decided_at = utcnow()
        case.decision_reason = reason

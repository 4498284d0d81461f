"""Scored questionnaires (PHQ-9, GAD-7, PCL-5, C-SSRS) with the risk flag
they may raise, and the contraindication screening of a submitted intake."""
from __future__ import annotations

import sqlalchemy as sa

from common import idempotency
from common.events import utcnow
from common.handlers import rpc
from common.validation import parse
from services.intake import domain, events, schemas
from services.intake.capabilities.records import Records
from services.intake.models import QuestionnaireResponse, RecordAccess, Screening
from services.intake.schemas import questionnaire_view, screening_view


class QuestionnairesAndScreening(Records):

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
                RecordAccess.record(uow, patient_id, "questionnaire_replayed")
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
                uow.emit(events.PatientRiskFlagged(
                    patient_id=record.patient_id, mrn=record.mrn,
                    flags=list(score.risk_flags), instrument=score.instrument,
                    band=score.band, response_id=entry.response_id,
                ))
            if score.instrument in events.OUTCOME_INSTRUMENTS:
                # So a score staff take during a course joins its outcome series.
                uow.emit(events.QuestionnaireScored(
                    patient_id=record.patient_id, response_id=entry.response_id, instrument=score.instrument,
                    total=score.total, band=score.band, completed_at=entry.completed_at,
                ))
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

    # --------------------------------------------------------------- screening

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
            uow.emit(events.IntakeScreened(
                patient_id=record.patient_id, screening_id=entry.screening_id,
                outcome=result.outcome.value,
                reasons=[{"code": r["code"], "severity": r["severity"]} for r in reasons],
                scores=self._score_facts(uow.session, record),
            ))
            return screening_view(entry)

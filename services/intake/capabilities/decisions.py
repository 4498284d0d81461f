"""The intake case: submitted for review, then approved or declined by a
named clinician, and read back with its screening and scores."""
from __future__ import annotations

from common.errors import ValidationFailed
from common.events import utcnow
from common.handlers import rpc
from common.validation import parse
from services.intake import domain, events, schemas
from services.intake.capabilities.records import Records
from services.intake.models import IntakeCase, Screening
from services.intake.schemas import intake_view, screening_view


class Decisions(Records):

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
            uow.emit(events.IntakeSubmitted(patient_id=record.patient_id, submitted_at=case.submitted_at))
            return intake_view(record)

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
            uow.emit(events.IntakeApproved(
                patient_id=record.patient_id, mrn=record.mrn,
                decided_by=clinician, decided_at=case.decided_at,
                screening_outcome=case.screening_outcome,
                diagnosis_codes=list(record.diagnosis_codes or []),
                primary_condition=record.primary_condition,
                weight_kg=record.weight_kg,
                scores=self._score_facts(uow.session, record),
            ))
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
            uow.emit(events.IntakeDeclined(patient_id=record.patient_id, decided_by=clinician,
                                           decided_at=case.decided_at))
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

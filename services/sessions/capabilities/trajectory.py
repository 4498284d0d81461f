"""The outcome trajectory of a patient: the PHQ-9 and GAD-7 series across
their course(s), marked staff or self-reported, with the completed sessions
as markers; as JSON, as a FHIR R4 Bundle of Observations and as an SVG
chart. Each is a read of the patient's record, and audited as one."""
from __future__ import annotations

import sqlalchemy as sa

from common.errors import NotFound
from common.events import iso
from common.handlers import rpc
from common.validation import require_id
from services.sessions import fhir, outcome_chart, trajectory as series
from services.sessions.capabilities.chart import Chart
from services.sessions.domain import SessionStatus
from services.sessions.models import OutcomeScore, PatientEligibility, SessionRecord, TreatmentPlan


class OutcomeTrajectory(Chart):

    @rpc
    def trajectory(self, patient_id, plan_id=None):
        """The series across the patient's courses (or the one ``plan_id``):
        ``points`` (instrument, total, band, source, recorded_at) in time
        order and the completed ``sessions`` (number, date) as markers."""
        with self.db.unit_of_work() as uow:
            found, plans = self._series(uow.session, patient_id, plan_id)
            self._audit(uow, found.patient_id, "outcomes_read", one_course(plan_id, plans))
            return found.view([course_view(plan) for plan in plans])

    @rpc
    def export_trajectory_fhir(self, patient_id, plan_id=None):
        """The same series as a FHIR R4 Bundle (collection) of survey
        Observations (LOINC 44261-6 PHQ-9, 70274-6 GAD-7)."""
        with self.db.unit_of_work() as uow:
            found, plans = self._series(uow.session, patient_id, plan_id)
            self._audit(uow, found.patient_id, "outcomes_fhir_export", one_course(plan_id, plans))
            return fhir.outcome_bundle(found)

    @rpc
    def trajectory_chart(self, patient_id, plan_id=None):
        """The same series as an SVG chart (text), dates in the clinic's zone."""
        with self.db.unit_of_work() as uow:
            found, plans = self._series(uow.session, patient_id, plan_id)
            self._audit(uow, found.patient_id, "outcomes_chart_read", one_course(plan_id, plans))
            return outcome_chart.render(found, self._rules().hours.zone)

    def _series(self, session, patient_id, plan_id) -> tuple[series.Trajectory, list[TreatmentPlan]]:
        patient_id = require_id(patient_id, "patient_id")
        if plan_id is not None:
            plan = self._plan(session, plan_id)
            if plan.patient_id != patient_id:
                raise NotFound(f"the patient has no treatment plan {plan_id}")
            plans = [plan]
        else:
            plans = list(session.execute(sa.select(TreatmentPlan).where(TreatmentPlan.patient_id == patient_id)
                                         .order_by(TreatmentPlan.created_at, TreatmentPlan.plan_id)).scalars())
            if not plans and session.get(PatientEligibility, patient_id) is None:
                raise NotFound(f"no treatment record for patient {patient_id}")
        plan_ids = [plan.plan_id for plan in plans]
        scores = session.execute(sa.select(OutcomeScore).where(OutcomeScore.plan_id.in_(plan_ids))).scalars()
        completed = session.execute(sa.select(SessionRecord).where(
            SessionRecord.plan_id.in_(plan_ids), SessionRecord.status == SessionStatus.COMPLETED.value)).scalars()
        found = series.build(patient_id, plan_ids, scores, completed, self._rules().hours.local_date)
        return found, plans


def one_course(plan_id, plans: list[TreatmentPlan]) -> str | None:
    """The audit row's subject: the plan asked for, if one was."""
    return plans[0].plan_id if plan_id is not None else None


def course_view(plan: TreatmentPlan) -> dict:
    return {"plan_id": plan.plan_id, "route": plan.route, "status": plan.status,
            "baseline_phq9": plan.baseline_phq9, "created_at": iso(plan.created_at),
            "course_completed_at": iso(plan.course_completed_at)}

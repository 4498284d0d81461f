"""PHQ-9 and GAD-7 scores taken outside check-in join the outcome series of
the patient's active treatment plan: those the patient reported by link
(intake's ``self_report.completed``), marked self-reported, and those staff
entered in intake (``questionnaire.scored``), marked staff, beside the
scores staff took at check-in; a course's response and remission count the
PHQ-9 ones."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from common.handlers import consumes
from services.intake.events import QuestionnaireScored, SelfReportCompleted
from services.sessions.capabilities.chart import Chart
from services.sessions.models import OutcomeScore, TreatmentPlan
from services.sessions.trajectory import INSTRUMENTS, ScoreSource


class SelfReports(Chart):

    @consumes(SelfReportCompleted)
    def on_self_report_completed(self, uow, event):
        data = event.data
        self._join_series(uow, data.patient_id, data.instrument, ScoreSource.SELF_REPORT, data.total,
                          data.completed_at, f"{data.instrument}_self_report")

    @consumes(QuestionnaireScored)
    def on_questionnaire_scored(self, uow, event):
        data = event.data
        self._join_series(uow, data.patient_id, data.instrument, ScoreSource.STAFF, data.total,
                          data.completed_at, f"{data.instrument}_staff_entered")

    def _join_series(self, uow, patient_id: str, instrument: str, source: ScoreSource, total: int,
                     recorded_at: datetime, action: str) -> None:
        # A redelivered event never reaches here twice: the handler's claim
        # on the event id (common.handlers.consumes) is in this transaction.
        if instrument not in INSTRUMENTS:
            return
        plan = uow.session.execute(
            sa.select(TreatmentPlan).where(TreatmentPlan.patient_id == patient_id,
                                           TreatmentPlan.status == "active")
            .order_by(TreatmentPlan.created_at.desc()).limit(1)).scalar_one_or_none()
        if plan is None:
            return  # no course yet: intake keeps the score with the patient's record
        uow.session.add(OutcomeScore(plan_id=plan.plan_id, instrument=instrument, source=source.value,
                                     total=total, recorded_at=recorded_at))
        self._audit(uow, plan.patient_id, action, plan.plan_id)

"""Self-reported PHQ-9 and GAD-7 scores (intake's ``self_report.completed``)
join the outcome series of the patient's active treatment plan, marked as
self-reported, beside the scores staff took at check-in; a course's response
and remission count the PHQ-9 ones."""
from __future__ import annotations

import sqlalchemy as sa

from common.handlers import consumes
from services.intake.events import SelfReportCompleted
from services.sessions.capabilities.chart import Chart
from services.sessions.models import OutcomeScore, TreatmentPlan
from services.sessions.trajectory import INSTRUMENTS, ScoreSource


class SelfReports(Chart):

    @consumes(SelfReportCompleted)
    def on_self_report_completed(self, uow, event):
        data = event.data
        if data.instrument not in INSTRUMENTS:
            return
        plan = uow.session.execute(
            sa.select(TreatmentPlan).where(TreatmentPlan.patient_id == data.patient_id,
                                           TreatmentPlan.status == "active")
            .order_by(TreatmentPlan.created_at.desc()).limit(1)).scalar_one_or_none()
        if plan is None:
            return  # no course yet: intake keeps the score with the patient's record
        uow.session.add(OutcomeScore(plan_id=plan.plan_id, instrument=data.instrument,
                                     source=ScoreSource.SELF_REPORT.value, total=data.total,
                                     recorded_at=data.completed_at))
        self._audit(uow, plan.patient_id, f"{data.instrument}_self_report", plan.plan_id)

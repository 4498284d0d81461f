"""The clinic's monthly course report: courses started, completed and
stopped after one session, how long completion took, and response and
remission at course end. Aggregates only: no patient appears in it. The
arithmetic is ``retention.monthly_report``; this gathers its facts."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from common.events import as_utc, utcnow
from common.handlers import rpc
from services.sessions import retention
from services.sessions.capabilities.chart import Chart
from services.sessions.domain import AppointmentStatus
from services.sessions.models import Appointment, OutcomeScore, SessionRecord, TreatmentPlan


class CourseReport(Chart):

    @rpc
    def get_retention_report(self, from_month=None, to_month=None):
        """Months ``from_month`` to ``to_month`` (``YYYY-MM``, clinic time;
        by default the twelve months up to this one)."""
        hours = self._rules().hours
        this_month = hours.local_date(utcnow()).replace(day=1)
        last = retention.parse_month(to_month, "to") if to_month else this_month
        first = retention.parse_month(from_month, "from") if from_month else retention.months_before(last, 11)
        months = retention.months_between(first, last)
        after_last = (last + timedelta(days=32)).replace(day=1)
        # Nothing created after the last month can count in it.
        until = datetime.combine(after_last, datetime.min.time(), hours.zone).astimezone(timezone.utc)
        with self.db.read() as session:
            plans = session.execute(sa.select(TreatmentPlan).where(TreatmentPlan.created_at < until)).scalars().all()
            given = {plan_id: (count, as_utc(first_start)) for plan_id, count, first_start in session.execute(
                sa.select(Appointment.plan_id, sa.func.count(), sa.func.min(SessionRecord.started_at))
                .join(SessionRecord, SessionRecord.appointment_id == Appointment.appointment_id)
                .where(Appointment.kind == "induction", Appointment.status == AppointmentStatus.COMPLETED.value,
                       Appointment.plan_id.in_([p.plan_id for p in plans]))
                .group_by(Appointment.plan_id))}
            completed = [p.plan_id for p in plans if p.course_completed_at is not None]
            scores: dict[str, list] = {}
            # Response and remission are PHQ-9 rules; GAD-7 rides along in the series.
            for score in session.execute(sa.select(OutcomeScore)
                                         .where(OutcomeScore.plan_id.in_(completed), OutcomeScore.instrument == "phq9")
                                         .order_by(OutcomeScore.recorded_at, OutcomeScore.id)).scalars():
                scores.setdefault(score.plan_id, []).append(
                    (hours.local_date(as_utc(score.recorded_at)), score.total))
            courses = []
            for plan in plans:
                count, first_start = given.get(plan.plan_id, (0, None))
                stopped = (plan.status != "active" and plan.closed_at is not None and count == 1
                           and plan.course_completed_at is None)
                courses.append(retention.CourseFacts(
                    started_on=hours.local_date(first_start) if first_start else None,
                    completed_on=hours.local_date(as_utc(plan.course_completed_at))
                    if plan.course_completed_at else None,
                    stopped_after_first_on=hours.local_date(as_utc(plan.closed_at)) if stopped else None,
                    intake_baseline=plan.baseline_phq9, scores=tuple(scores.get(plan.plan_id, ()))))
        return {"from": months[0], "to": months[-1], "time_zone": hours.time_zone,
                "months": retention.monthly_report(courses, months)}

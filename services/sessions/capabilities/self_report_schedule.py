"""The self-report schedule's timer: finds the forms a treatment plan's
schedule makes due now (services/sessions/self_report_schedule.py decides)
and asks intake to send each by link (``self_report.due``).

Safe with several replicas: each due form is claimed by inserting its row
in ``self_report_dues`` (``ON CONFLICT DO NOTHING``) in the same transaction
as its event, so whichever timer inserts first announces it and the others,
waiting on that row, find it taken."""
from __future__ import annotations

import logging
from datetime import timedelta

import sqlalchemy as sa

from common.database import insert_ignoring_duplicates
from common.events import as_utc, utcnow
from common.service import configured_timer
from services.sessions import events
from services.sessions import self_report_schedule as schedule
from services.sessions.capabilities.chart import Chart
from services.sessions.domain import AppointmentStatus, SessionStatus
from services.sessions.models import Appointment, SelfReportDue, SessionRecord, TreatmentPlan

log = logging.getLogger(__name__)

ACTIVE = "active"


class SelfReportSchedule(Chart):

    @configured_timer(interval=300, config_key="self_report_scan_seconds", section="SESSIONS")
    def announce_due_self_reports(self):
        """Announce every form due now that has not been announced yet."""
        now = utcnow()
        rules = self._rules().self_report
        zone = self._rules().hours.zone
        with self.db.unit_of_work() as uow:
            due = []
            for appointment, plan in uow.session.execute(
                    sa.select(Appointment, TreatmentPlan).join(TreatmentPlan, Appointment.plan_id == TreatmentPlan.plan_id)
                    .where(Appointment.kind == "induction", Appointment.status == AppointmentStatus.SCHEDULED.value,
                           Appointment.starts_at > now,
                           Appointment.starts_at <= now + timedelta(hours=rules.before_induction_hours),
                           TreatmentPlan.status == ACTIVE)):
                due += [(plan, d) for d in schedule.before_induction(
                    appointment.appointment_id, as_utc(appointment.starts_at), _forms(plan, "before_induction"),
                    now, rules)]
            # Discharged at most the window plus a day and a half ago: the
            # day after in any time zone, and its window, are within that.
            since = now - timedelta(hours=rules.after_session_window_hours + 36)
            for record, plan in uow.session.execute(
                    sa.select(SessionRecord, TreatmentPlan).join(TreatmentPlan, SessionRecord.plan_id == TreatmentPlan.plan_id)
                    .where(SessionRecord.status == SessionStatus.COMPLETED.value,
                           SessionRecord.discharged_at >= since, TreatmentPlan.status == ACTIVE)):
                due += [(plan, d) for d in schedule.after_session(
                    record.session_id, as_utc(record.discharged_at), _forms(plan, "after_session"), now, zone,
                    rules)]
            for plan in uow.session.execute(
                    sa.select(TreatmentPlan).where(TreatmentPlan.status == ACTIVE,
                                                   TreatmentPlan.course_completed_at.is_not(None))).scalars():
                due += [(plan, d) for d in schedule.weekly_in_maintenance(
                    plan.plan_id, as_utc(plan.course_completed_at), _forms(plan, "weekly_in_maintenance"), now,
                    rules)]
            announced = self._announce(uow, due, now)
        if announced:
            log.info("%d self-report form(s) due", announced)
        return announced

    def _announce(self, uow, due, now) -> int:
        taken = set(uow.session.execute(sa.select(SelfReportDue.due_id).where(
            SelfReportDue.due_id.in_([d.due_id for _, d in due]))).scalars()) if due else set()
        announced = 0
        for plan, form in due:
            if form.due_id in taken:
                continue
            claimed = insert_ignoring_duplicates(uow.session, SelfReportDue.__table__, {
                "due_id": form.due_id, "plan_id": plan.plan_id, "patient_id": plan.patient_id,
                "questionnaire": form.questionnaire, "due_at": form.due_at, "announced_at": now,
            }, unique="due_id")
            if claimed:
                uow.emit(events.SelfReportDue(patient_id=plan.patient_id, plan_id=plan.plan_id,
                                              due_id=form.due_id, questionnaire=form.questionnaire))
                announced += 1
        return announced


def _forms(plan: TreatmentPlan, occasion: str) -> list[str]:
    return list((plan.self_report_schedule or {}).get(occasion) or [])

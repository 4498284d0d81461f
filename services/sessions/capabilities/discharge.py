"""The end of a session: discharge once the criteria (and, for esketamine,
the REMS monitoring points) are met, or an abort; with the REMS monitoring
form and the course's completion they bring."""
from __future__ import annotations

import sqlalchemy as sa

from common.errors import Conflict, field_error
from common.events import as_utc, utcnow
from common.handlers import rpc
from common.validation import parse
from services.sessions import domain, events, schemas
from services.sessions.capabilities.chart import Chart, not_future
from services.sessions.domain import AppointmentStatus, SessionStatus
from services.sessions.models import Appointment, MonitoringForm, SessionRecord, SideEffect, TreatmentPlan
from services.sessions.schemas import measures, reading_view


class Discharge(Chart):

    @rpc
    def complete_session(self, session_id, completion, if_match=None):
        """End of dosing and discharge. Refused until the discharge criteria
        (and, for esketamine, the REMS monitoring points) are met."""
        given = parse(schemas.CompletionInput, completion)
        self._require_clinician("discharge a patient")
        rules = self._rules()
        if not given.no_driving_advised:
            raise field_error("no_driving_advised", "the patient must be told not to drive until the next day")
        with self.db.unit_of_work() as uow:
            record = self._session_for(uow.session, session_id, "complete", if_match)
            plan = self._plan(uow.session, record.plan_id, lock=True)
            started_at = as_utc(record.started_at)
            if record.route == "iv_infusion" and given.stopped_at is None:
                # The infusion time is what is billed (96365/96366): it is
                # charted, never guessed from the discharge time.
                raise field_error("stopped_at", "give the time the infusion stopped")
            stopped_at = not_future(given.stopped_at, "stopped_at")
            discharged_at = not_future(given.discharged_at, "discharged_at")
            if stopped_at < started_at:
                raise field_error("stopped_at", "must not be before the session started")
            if discharged_at < stopped_at:
                raise field_error("discharged_at", "must not be before dosing stopped")
            readings = self._readings(uow.session, record)
            after_dosing = [r for r in readings if as_utc(r.recorded_at) > started_at]
            problems = domain.discharge_problems(
                record.baseline_vitals or {}, measures(after_dosing[-1]) if after_dosing else None,
                alert_and_oriented=given.alert_and_oriented, escort_present=given.escort_present,
                rules=rules.discharge, limits=rules.vitals)
            if record.route == domain.ESKETAMINE:
                problems += domain.rems_monitoring_problems(
                    started_at, discharged_at,
                    [as_utc(r.recorded_at) for r in readings if r.systolic is not None],
                    domain.route(record.route).min_observation_minutes)
            if problems:
                raise Conflict("the patient cannot be discharged yet: " + ", ".join(problems), {"problems": problems})
            record.ended_at, record.discharged_at = stopped_at, discharged_at
            record.discharge = {"alert_and_oriented": True, "escort_present": True, "no_driving_advised": True}
            record.status = SessionStatus.COMPLETED.value
            appointment = self._appointment(uow.session, record.appointment_id)
            appointment.status = AppointmentStatus.COMPLETED.value
            uow.session.flush()
            # The nth treatment actually given in the plan, whatever was
            # cancelled or aborted on the way: what billing counts packages by.
            given_so_far = uow.session.execute(sa.select(sa.func.count()).select_from(Appointment).where(
                Appointment.plan_id == plan.plan_id,
                Appointment.status == AppointmentStatus.COMPLETED.value)).scalar_one()
            uow.emit(events.SessionCompleted(
                patient_id=record.patient_id, session_id=record.session_id,
                appointment_id=record.appointment_id, plan_id=record.plan_id, route=record.route,
                drug=record.drug, dose_mg=record.dose_mg, started_at=started_at,
                ended_at=stopped_at, duration_minutes=domain.minutes_between(started_at, stopped_at),
                date_of_service=rules.hours.local_date(started_at),
                clinician_id=appointment.clinician_id, sequence=given_so_far,
            ))
            if record.route == domain.ESKETAMINE:
                self._open_monitoring_form(uow.session, record, readings, rules)
            self._complete_course_if_done(uow, plan)
            self._audit(uow, record.patient_id, "session_complete", record.session_id)
            return self._session_view(uow.session, record)

    @rpc
    def abort_session(self, session_id, abort, if_match=None):
        given = parse(schemas.AbortInput, abort)
        with self.db.unit_of_work() as uow:
            record = self._session_for(uow.session, session_id, "abort", if_match)
            now = utcnow()
            record.status = SessionStatus.ABORTED.value
            record.aborted_at, record.abort_reason_code, record.abort_note = now, given.reason_code, given.note
            self._appointment(uow.session, record.appointment_id).status = AppointmentStatus.ABORTED.value
            self._audit(uow, record.patient_id, "session_abort", record.session_id)
            started_at = as_utc(record.started_at)
            service_day = self._rules().hours.local_date(started_at or now)
            # The note is clinical free text: only the reason code leaves.
            uow.emit(events.SessionAborted(
                patient_id=record.patient_id, session_id=record.session_id,
                appointment_id=record.appointment_id, route=record.route, drug=record.drug,
                dose_mg=record.dose_mg, started_at=started_at, aborted_at=now,
                duration_minutes=domain.minutes_between(started_at, now), reason_code=given.reason_code,
                date_of_service=service_day,
            ))
            return self._session_view(uow.session, record)

    def _open_monitoring_form(self, session, record: SessionRecord, readings, rules: domain.Rules) -> None:
        day = rules.hours.local_date(as_utc(record.started_at))
        serious = session.execute(sa.select(SideEffect.effect).where(
            SideEffect.session_id == record.session_id, SideEffect.serious.is_(True))).scalars().all()
        session.add(MonitoringForm(
            session_id=record.session_id, patient_id=record.patient_id, session_date=day,
            due_on=domain.monitoring_form_due(day, rules.monitoring_form_days),
            content={"dose_mg": record.dose_mg, "lot_number": record.lot_number,
                     "monitoring_minutes": domain.minutes_between(as_utc(record.started_at),
                                                                  as_utc(record.discharged_at)),
                     "vitals": [reading_view(r) for r in readings],
                     "serious_adverse_events": sorted(set(serious))},
        ))

    def _complete_course_if_done(self, uow, plan: TreatmentPlan) -> None:
        done = uow.session.execute(sa.select(sa.func.count()).select_from(Appointment).where(
            Appointment.plan_id == plan.plan_id, Appointment.kind == "induction",
            Appointment.status == AppointmentStatus.COMPLETED.value)).scalar_one()
        if done < plan.induction_sessions or plan.course_completed_at is not None:
            return
        plan.course_completed_at = utcnow()
        summary = self._course_summary(uow.session, plan)
        uow.emit(events.CourseCompleted(
            patient_id=plan.patient_id, plan_id=plan.plan_id, sessions_completed=done,
            **{k: summary[k] for k in ("baseline_phq9", "final_phq9", "change_percent", "response", "remission")},
        ))

"""Front-desk tasks: the calls that keep a patient's course going. The
rules that open them run where their facts change (a no-show, a plan
stopped, a pre-visit reply) or on a timer (no next induction session booked
within the rebooking window); a booking closes them, a later YES to the
pre-visit message closes the task its earlier answer opened, or staff close
them with the outcome. The rules themselves are in ``services.sessions.retention``."""
from __future__ import annotations

import logging

import sqlalchemy as sa

from common.database import insert_ignoring_duplicates
from common.errors import NotFound
from common.etag import check_if_match
from common.events import as_utc, utcnow
from common.handlers import consumes, rpc
from common.service import configured_timer
from common.validation import paging, parse, require_id
from services.notifications.events import PreVisitReplyReceived
from services.sessions import events, retention, schemas
from services.sessions.capabilities.chart import Chart
from services.sessions.domain import HOLDING, AppointmentStatus
from services.sessions.models import (
    Appointment, FrontDeskTask, PatientEligibility, PreVisitReply, SessionRecord, TreatmentPlan, new_id,
)
from services.sessions.retention import CloseOutcome, TaskKind, TaskState

log = logging.getLogger(__name__)

# Completed sessions looked at per timer run and replica.
SCAN_BATCH = 200


def open_task(uow, kind: TaskKind, patient_id: str, plan_id: str | None, appointment_id: str | None,
              reason: str) -> bool:
    """Open a task unless one of this kind is already open for the patient
    and plan; the unique ``open_key`` decides, so racing openers (replicas,
    redeliveries) make one task and one event. True if it opened one."""
    now, task_id = utcnow(), new_id()
    opened = insert_ignoring_duplicates(uow.session, FrontDeskTask.__table__, {
        "task_id": task_id, "kind": kind.value, "patient_id": patient_id, "plan_id": plan_id,
        "appointment_id": appointment_id, "reason": reason, "state": TaskState.OPEN.value,
        "open_key": retention.open_key(patient_id, kind, plan_id), "opened_at": now,
    }, unique="open_key")
    if opened:
        uow.emit(events.FrontDeskTaskOpened(task_id=task_id, kind=kind.value, patient_id=patient_id,
                                            plan_id=plan_id, appointment_id=appointment_id, opened_at=now))
    return opened


def close_task(uow, task: FrontDeskTask, outcome: CloseOutcome, closed_by: str | None,
               reason: str | None = None) -> None:
    task.state, task.open_key = TaskState.CLOSED.value, None
    task.closed_at, task.closed_by = utcnow(), closed_by or "system"
    task.close_outcome, task.close_reason = outcome.value, reason
    uow.emit(events.FrontDeskTaskClosed(task_id=task.task_id, kind=task.kind, patient_id=task.patient_id,
                                        plan_id=task.plan_id, appointment_id=task.appointment_id,
                                        outcome=outcome.value, closed_at=task.closed_at))


def open_no_show_task(uow, missed: Appointment) -> None:
    open_task(uow, TaskKind.NO_SHOW, missed.patient_id, missed.plan_id, missed.appointment_id,
              f"did not come to {missed.kind} session {missed.sequence}")


def close_tasks_answered_by_booking(uow, booked: Appointment, actor: str | None) -> int:
    """A new booking answers the patient's rebooking, no-show and
    stopped-course tasks (see ``retention.closes_on_booking``)."""
    tasks = uow.session.execute(sa.select(FrontDeskTask).where(
        FrontDeskTask.patient_id == booked.patient_id, FrontDeskTask.state == TaskState.OPEN.value,
        FrontDeskTask.kind.in_([k.value for k in retention.CLOSED_BY_BOOKING]))
        .order_by(FrontDeskTask.opened_at).with_for_update()).scalars().all()
    closing = [t for t in tasks if retention.closes_on_booking(TaskKind(t.kind), t.plan_id, booked.plan_id)]
    for task in closing:
        close_task(uow, task, CloseOutcome.BOOKED, actor)
    return len(closing)


def completed_inductions(session, plan_id: str) -> int:
    return session.execute(sa.select(sa.func.count()).select_from(Appointment).where(
        Appointment.plan_id == plan_id, Appointment.kind == "induction",
        Appointment.status == AppointmentStatus.COMPLETED.value)).scalar_one()


class FrontDesk(Chart):

    @rpc
    def list_front_desk_tasks(self, state="open", kind=None, patient_id=None, limit=50, offset=0):
        """Tasks, oldest first, with the patient's MRN and name for the call.
        Each task listed is a look at its patient: audited, as a search is."""
        query = sa.select(FrontDeskTask)
        if state:
            query = query.where(FrontDeskTask.state == schemas.task_state(state))
        if kind:
            query = query.where(FrontDeskTask.kind == schemas.task_kind(kind))
        if patient_id:
            query = query.where(FrontDeskTask.patient_id == require_id(patient_id, "patient_id"))
        limit, offset = paging(limit, offset, most=200)
        with self.db.unit_of_work() as uow:
            session = uow.session
            total = session.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
            rows = session.execute(query.order_by(FrontDeskTask.opened_at, FrontDeskTask.task_id)
                                   .limit(limit).offset(offset)).scalars().all()
            patients = {p.patient_id: p for p in session.execute(sa.select(PatientEligibility).where(
                PatientEligibility.patient_id.in_({r.patient_id for r in rows}))).scalars()}
            items = [schemas.task_view(r, patients.get(r.patient_id)) for r in rows]
            for task in rows:
                self._audit(uow, task.patient_id, "front_desk_task_listed", task.task_id)
        return {"items": items, "total": total, "limit": limit, "offset": offset}

    @rpc
    def get_front_desk_task(self, task_id):
        with self.db.unit_of_work() as uow:
            task = self._task(uow.session, task_id)
            self._audit(uow, task.patient_id, "front_desk_task_read", task.task_id)
            return schemas.task_view(task, uow.session.get(PatientEligibility, task.patient_id))

    @rpc
    def close_front_desk_task(self, task_id, closure, if_match=None):
        """Staff close a task: ``booked`` (the patient was booked, e.g. in
        another plan) or ``declined`` with the patient's reason."""
        given = parse(schemas.TaskClosure, closure)
        with self.db.unit_of_work() as uow:
            task = self._task(uow.session, task_id, lock=True)
            patient = uow.session.get(PatientEligibility, task.patient_id)
            check_if_match(if_match, schemas.task_view(task, patient))
            retention.check_close(TaskState(task.state), CloseOutcome(given.outcome), given.reason)
            close_task(uow, task, CloseOutcome(given.outcome), self.db.actor, given.reason)
            self._audit(uow, task.patient_id, "front_desk_task_close", task.task_id)
            return schemas.task_view(task, patient)

    @configured_timer(interval=300, config_key="retention_scan_seconds", section="SESSIONS")
    def find_courses_without_next_booking(self):
        """Completed induction sessions whose rebooking window has passed are
        each looked at once; rows are claimed with SKIP LOCKED so replicas
        split the work, and the open task's unique key keeps a task single."""
        rules, now = self._rules().retention, utcnow()
        window_end = now - rules.rebook_window
        with self.db.unit_of_work() as uow:
            due = uow.session.execute(
                sa.select(Appointment, SessionRecord.discharged_at)
                .join(SessionRecord, SessionRecord.appointment_id == Appointment.appointment_id)
                .where(Appointment.kind == "induction", Appointment.status == AppointmentStatus.COMPLETED.value,
                       Appointment.retention_checked_at.is_(None), SessionRecord.discharged_at <= window_end)
                .order_by(SessionRecord.discharged_at).limit(SCAN_BATCH)
                .with_for_update(skip_locked=True, of=Appointment)).all()
            opened = 0
            for appointment, discharged_at in due:
                appointment.retention_checked_at = now
                if not retention.rebooking_check_due(as_utc(discharged_at), now, rules):
                    continue  # older than the look-back: history, not a call to make
                plan = uow.session.get(TreatmentPlan, appointment.plan_id)
                later = uow.session.execute(sa.select(sa.func.count()).select_from(Appointment).where(
                    Appointment.plan_id == plan.plan_id, Appointment.starts_at > appointment.starts_at,
                    Appointment.status.in_([s.value for s in HOLDING]))).scalar_one()
                if retention.needs_rebooking_task(plan_active=plan.status == "active",
                                                  course_completed=plan.course_completed_at is not None,
                                                  later_booking=later > 0):
                    opened += open_task(uow, TaskKind.NO_NEXT_BOOKING, plan.patient_id, plan.plan_id,
                                        appointment.appointment_id,
                                        f"no next induction session booked within {rules.rebook_hours} h "
                                        f"of session {appointment.sequence}")
        if opened:
            log.info("%d retention task(s) opened", opened)
        return opened

    @consumes(PreVisitReplyReceived)
    def on_previsit_reply(self, uow, event):
        """A confirmed reply ticks the pre-visit checklist on the appointment
        (shown at check-in); any other answer asks the front desk to call,
        until the patient's latest reply is a YES, which closes that call
        as ``confirmed``."""
        data = event.data
        if not insert_ignoring_duplicates(uow.session, PreVisitReply.__table__, {
                "reply_id": data.reply_id, "appointment_id": data.appointment_id, "answer": data.answer,
                "received_at": data.received_at, "recorded_at": utcnow()}, unique="reply_id"):
            return  # this reply was already taken, under another event id
        appointment = uow.session.get(Appointment, data.appointment_id, with_for_update=True)
        if appointment is None or appointment.patient_id != data.patient_id:
            log.warning("pre-visit reply %s names an appointment sessions does not hold for that patient",
                        data.reply_id)
            return
        if retention.previsit_confirmed(data.answer):
            earlier = as_utc(appointment.previsit_confirmed_at)
            if earlier is None or earlier < data.received_at:
                appointment.previsit_confirmed_at = data.received_at
            self._audit(uow, appointment.patient_id, "previsit_confirmed", appointment.appointment_id)
        # Replies may be taken out of order: the latest one received decides
        # whether a call is still needed.
        standing = retention.standing_previsit_answer(uow.session.execute(
            sa.select(PreVisitReply.received_at, PreVisitReply.reply_id, PreVisitReply.answer)
            .where(PreVisitReply.appointment_id == appointment.appointment_id)).all())
        if retention.previsit_confirmed(standing):
            if retention.previsit_confirmed(data.answer):
                self._close_previsit_tasks(uow, appointment)
            return
        if retention.previsit_confirmed(data.answer):
            return
        open_task(uow, TaskKind.PREVISIT_UNCONFIRMED, appointment.patient_id, appointment.plan_id,
                  appointment.appointment_id,
                  "the patient declined the pre-visit message" if data.answer == "declined"
                  else "the patient's reply to the pre-visit message was not understood")

    def _close_previsit_tasks(self, uow, appointment: Appointment) -> None:
        tasks = uow.session.execute(sa.select(FrontDeskTask).where(
            FrontDeskTask.kind == TaskKind.PREVISIT_UNCONFIRMED.value, FrontDeskTask.state == TaskState.OPEN.value,
            FrontDeskTask.appointment_id == appointment.appointment_id).with_for_update()).scalars().all()
        for task in tasks:
            close_task(uow, task, CloseOutcome.CONFIRMED, None)

    def _task(self, session, task_id, lock: bool = False) -> FrontDeskTask:
        task = session.get(FrontDeskTask, require_id(task_id, "task_id"), with_for_update=lock or None)
        if task is None:
            raise NotFound(f"no front-desk task {task_id}")
        return task

"""What several sessions capabilities share: the clinic's rules, the
clinician check and the access trail, finding and locking plans,
appointments and session records, the eligibility check, a session
record's view and a course's outcome summary. Every capability class
inherits ``Chart``."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from common.etag import check_if_match
from common.database import ServiceDatabase
from common.errors import Conflict, Forbidden, NotFound, field_error
from common.events import as_utc, iso, utcnow
from common.nested import Parts, Related
from common.validation import require_id
from services.sessions import domain, schemas
from services.sessions.domain import AppointmentStatus, SessionStatus
from services.sessions.models import (
    Addendum, Appointment, MonitoringForm, OutcomeScore, PatientEligibility, RecordAccess, SessionRecord, SideEffect,
    TreatmentPlan, VitalsReading,
)

# What a session record's view shows besides the record, each list in the
# order the view shows it: read by a query each, or on PostgreSQL nested
# into the statement that reads the record.
SESSION_PARTS = Parts(
    readings=Related(VitalsReading, VitalsReading.session_id, SessionRecord.session_id,
                     VitalsReading.recorded_at, VitalsReading.reading_id),
    effects=Related(SideEffect, SideEffect.session_id, SessionRecord.session_id,
                    SideEffect.recorded_at, SideEffect.side_effect_id),
    addenda=Related(Addendum, Addendum.session_id, SessionRecord.session_id,
                    Addendum.written_at, Addendum.addendum_id),
    form=Related(MonitoringForm, MonitoringForm.session_id, SessionRecord.session_id, one=True),
    # Its pre-visit confirmation, by the patient's reply.
    appointment=Related(Appointment, Appointment.appointment_id, SessionRecord.appointment_id, one=True),
)


def _audited_session_read() -> sa.Select:
    """On PostgreSQL, a session record, everything its view shows and the
    audit row of its read, in one statement."""
    records = SessionRecord.__table__
    found = (sa.select(records.c.session_id, records.c.patient_id)
             .where(records.c.session_id == sa.bindparam("session_id")).cte("found"))
    return (sa.select(SessionRecord, *SESSION_PARTS.nested())
            .where(SessionRecord.session_id == sa.bindparam("session_id"))
            .add_cte(RecordAccess.along(found, "session_read", subject_id=found.c.session_id)))


# Built once: the statement cache then finds its compiled form at once.
AUDITED_SESSION_READ = _audited_session_read()

CLINICIAN_ROLES = ("clinician", "admin")
# Times typed in by staff may be backdated (charting after the fact), but a
# clock a little ahead of ours is no reason to refuse a reading.
FUTURE_TOLERANCE = timedelta(minutes=5)


class Chart:
    """Declared on ``SessionsService``: ``db`` (the service's database) and
    ``rules`` (the clinic's hours, course, vitals and discharge rules)."""

    db: ServiceDatabase
    rules: domain.Rules

    def _rules(self) -> domain.Rules:
        return self.rules

    def _require_clinician(self, what: str) -> str:
        """Plans, doses, discharge and signatures are a clinician's; the
        gateway checks roles too, but other systems call RPC directly."""
        actor = self.db.actor
        if actor_role(actor) not in CLINICIAN_ROLES:
            raise Forbidden(f"only a clinician may {what}; send context_data "
                            "{'actor': '<user> (clinician)'} with the call")
        return actor

    def _audit(self, uow, patient_id: str, action: str, subject_id: str | None = None) -> None:
        RecordAccess.record(uow, patient_id, action, subject_id=subject_id)

    def _replayed_on_session(self, uow, claim, session_id: str, action: str):
        """A replayed write to a session record answers as the first call
        did, and the replay is in the patient's access log too."""
        record = self._session(uow.session, session_id)
        self._audit(uow, record.patient_id, f"{action}_replayed", record.session_id)
        return claim.answer

    # ------------------------------------------------------------ records

    def _check_eligible(self, session, patient_id: str, route_code: str, lock: bool = False) -> PatientEligibility:
        row = session.get(PatientEligibility, require_id(patient_id, "patient_id"), with_for_update=lock or None)
        status = row.intake_status if row else "unknown"
        if status != "approved":
            raise Conflict(f"the patient's intake is not approved (intake status: {status}); "
                           "treatment is scheduled only after a clinician approves the intake",
                           {"intake_status": status})
        if row.treatment_consent == "withdrawn":
            raise Conflict("the patient has withdrawn consent to treatment", {"treatment_consent": "withdrawn"})
        if route_code == domain.ESKETAMINE and not row.rems_enrollment_id:
            raise Conflict("esketamine needs the patient's Spravato REMS enrollment recorded first",
                           {"rems_enrolled": False})
        return row

    def _plan(self, session, plan_id, lock: bool = False) -> TreatmentPlan:
        plan = session.get(TreatmentPlan, require_id(plan_id, "plan_id"), with_for_update=lock or None)
        if plan is None:
            raise NotFound(f"no treatment plan {plan_id}")
        return plan

    def _appointment(self, session, appointment_id, lock: bool = False) -> Appointment:
        record = session.get(Appointment, require_id(appointment_id, "appointment_id"), with_for_update=lock or None)
        if record is None:
            raise NotFound(f"no appointment {appointment_id}")
        return record

    def _session(self, session, session_id, lock: bool = False) -> SessionRecord:
        record = session.get(SessionRecord, require_id(session_id, "session_id"), with_for_update=lock or None)
        if record is None:
            raise NotFound(f"no session {session_id}")
        return record

    def _read_session_view(self, uow, session_id) -> dict:
        """The session record's view, its read audited: on PostgreSQL the
        record, its parts and the audit row in one statement (six
        elsewhere)."""
        require_id(session_id, "session_id")
        if uow.session.get_bind().dialect.name != "postgresql":
            record = self._session(uow.session, session_id)
            self._audit(uow, record.patient_id, "session_read", record.session_id)
            return self._session_view(uow.session, record)
        row = uow.session.execute(AUDITED_SESSION_READ, {"session_id": session_id,
                                                         **RecordAccess.along_parameters(uow)}).first()
        if row is None:
            raise NotFound(f"no session {session_id}")
        return schemas.session_view(row.SessionRecord, **SESSION_PARTS.unpack(row))

    def _session_for(self, session, session_id, move: str, if_match=None) -> SessionRecord:
        """The session record, locked, once ``move`` is allowed on it (not on
        a closed or signed record) and it still reads as the caller last saw
        it (``if_match``): what every change to a record starts with."""
        record = self._session(session, session_id, lock=True)
        if if_match is not None:
            check_if_match(if_match, self._session_view(session, record))
        domain.check_session_move(SessionStatus(record.status), move, signed=bool(record.signed_at))
        return record

    def _readings(self, session, record: SessionRecord) -> list[VitalsReading]:
        return SESSION_PARTS["readings"].load(session, record)

    # -------------------------------------------------------------- views

    def _session_view(self, session, record: SessionRecord) -> dict:
        return schemas.session_view(record, **SESSION_PARTS.load(session, record))

    def _course_summary(self, session, plan: TreatmentPlan) -> dict:
        # Response and remission are PHQ-9's alone; GAD-7 is in the series beside it.
        scores = session.execute(sa.select(OutcomeScore).where(OutcomeScore.plan_id == plan.plan_id,
                                                               OutcomeScore.instrument == "phq9")
                                 .order_by(OutcomeScore.recorded_at, OutcomeScore.id)).scalars().all()
        baseline = plan.baseline_phq9 if plan.baseline_phq9 is not None else (scores[0].total if scores else None)
        # With the intake score as baseline every later score counts; without
        # it the first pre-session score is the baseline, not an outcome.
        later = scores if plan.baseline_phq9 is not None else scores[1:]
        outcome = domain.course_outcome(baseline, later[-1].total if later else None)
        completed, last_start = session.execute(
            sa.select(sa.func.count(), sa.func.max(Appointment.starts_at)).where(
                Appointment.plan_id == plan.plan_id,
                Appointment.status == AppointmentStatus.COMPLETED.value)).one()
        next_due = None
        if plan.course_completed_at is not None and plan.maintenance_interval_days and last_start is not None:
            last_day = self._rules().hours.local_date(as_utc(last_start))
            next_due = domain.next_maintenance_due(last_day, plan.maintenance_interval_days).isoformat()
        return {"plan_id": plan.plan_id, "sessions_completed": completed,
                "induction_sessions": plan.induction_sessions,
                "course_completed_at": iso(plan.course_completed_at),
                "maintenance_interval_days": plan.maintenance_interval_days, "next_maintenance_due": next_due,
                "phq9": [{"total": s.total, "recorded_at": iso(s.recorded_at), "session_id": s.session_id}
                         for s in scores],
                "baseline_phq9": outcome.baseline_phq9, "final_phq9": outcome.final_phq9,
                "change_percent": outcome.change_percent, "response": outcome.response,
                "remission": outcome.remission}


def actor_role(actor: str | None) -> str | None:
    """``"user (role)"`` as the gateway sends it."""
    if not actor or not actor.endswith(")") or "(" not in actor:
        return None
    return actor.rsplit("(", 1)[1][:-1].strip()


def parse_day(value) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise field_error("date", "must be a date such as 2026-11-24") from None


def not_future(moment: datetime | None, field_name: str) -> datetime:
    now = utcnow()
    if moment is None:
        return now
    if moment > now + FUTURE_TOLERANCE:
        raise field_error(field_name, "must not be in the future")
    return moment


def flush_or_conflict(session, message: str) -> None:
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(message) from None


NOT_CHECKED_IN = {"session_id": None, "session_status": None, "vitals_alerts": 0}


def session_states(session, appointment_ids: list[str]) -> dict[str, dict]:
    """The day view's session facts per appointment: its session record once
    the patient is checked in, the record's state, and how many of its vitals
    readings raised an alert (the staff console's board marks those chairs)."""
    records = session.execute(sa.select(SessionRecord.appointment_id, SessionRecord.session_id, SessionRecord.status)
                              .where(SessionRecord.appointment_id.in_(set(appointment_ids)))).all() \
        if appointment_ids else []
    alerting: dict[str, int] = {}
    if records:
        for session_id, alerts in session.execute(sa.select(VitalsReading.session_id, VitalsReading.alerts).where(
                VitalsReading.session_id.in_([r.session_id for r in records]))):
            alerting[session_id] = alerting.get(session_id, 0) + (1 if alerts else 0)
    return {r.appointment_id: {"session_id": r.session_id, "session_status": r.status,
                               "vitals_alerts": alerting.get(r.session_id, 0)} for r in records}

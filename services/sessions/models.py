"""Sessions' own tables. Nothing outside this service reads them."""
from __future__ import annotations

import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common.audit import RecordAccessMixin
from common.idempotency import idempotency_keys
from common.events import utcnow


class Base(DeclarativeBase):
    type_annotation_map = {datetime: sa.DateTime(timezone=True), dict: sa.JSON, list: sa.JSON}


def new_id() -> str:
    return str(uuid.uuid4())


Mg = sa.Numeric(6, 1, asdecimal=False)


class PatientEligibility(Base):
    """Sessions' copy of what intake decided about a patient, built from
    intake's events. Each fact keeps the ``occurred_at`` of the event that
    set it, so an older event arriving late never overwrites a newer one."""

    __tablename__ = "patient_eligibility"

    patient_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    mrn: Mapped[str | None] = mapped_column(sa.String(20))
    # Kept for the staff day view; never logged or published.
    given_name: Mapped[str | None] = mapped_column(sa.String(100))
    family_name: Mapped[str | None] = mapped_column(sa.String(100))
    time_zone: Mapped[str | None] = mapped_column(sa.String(64))
    details_as_of: Mapped[datetime | None]
    intake_status: Mapped[str] = mapped_column(sa.String(20), default="unknown")
    intake_as_of: Mapped[datetime | None]
    weight_kg: Mapped[float | None] = mapped_column(sa.Numeric(5, 1, asdecimal=False))
    baseline_phq9: Mapped[int | None]
    treatment_consent: Mapped[str] = mapped_column(sa.String(20), default="unknown")
    consent_as_of: Mapped[datetime | None]
    rems_enrollment_id: Mapped[str | None] = mapped_column(sa.String(60))
    rems_enrolled_at: Mapped[date | None]


class Resource(Base):
    """A chair or room, or a clinician, that appointments occupy."""

    __tablename__ = "resources"
    __table_args__ = (sa.UniqueConstraint("kind", "name"),)

    resource_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(sa.String(20))
    name: Mapped[str] = mapped_column(sa.String(120))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TreatmentPlan(Base):
    __tablename__ = "treatment_plans"

    plan_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    route: Mapped[str] = mapped_column(sa.String(30))
    drug: Mapped[str] = mapped_column(sa.String(20))
    indication: Mapped[str] = mapped_column(sa.String(60))
    mg_per_kg: Mapped[float | None] = mapped_column(sa.Numeric(4, 2, asdecimal=False))
    fixed_dose_mg: Mapped[float | None] = mapped_column(Mg)
    max_dose_mg: Mapped[float] = mapped_column(Mg)
    # An optional second ceiling, per kg of the weight at check-in.
    max_mg_per_kg: Mapped[float | None] = mapped_column(sa.Numeric(4, 2, asdecimal=False))
    induction_sessions: Mapped[int]
    min_hours_apart: Mapped[int]
    maintenance_interval_days: Mapped[int | None]
    baseline_phq9: Mapped[int | None]
    # Which forms the patient is sent by link, and when (self_report_schedule.py);
    # null sends nothing (plans made before there was a schedule).
    self_report_schedule: Mapped[dict | None]
    status: Mapped[str] = mapped_column(sa.String(20), default="active")
    course_completed_at: Mapped[datetime | None]
    # When the plan left "active" (stopped or closed), for the course report.
    closed_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(sa.String(160))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(sa.String(160))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Appointment(Base):
    __tablename__ = "appointments"

    appointment_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    plan_id: Mapped[str] = mapped_column(sa.ForeignKey("treatment_plans.plan_id"), index=True)
    patient_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    kind: Mapped[str] = mapped_column(sa.String(20))
    sequence: Mapped[int]
    route: Mapped[str] = mapped_column(sa.String(30))
    starts_at: Mapped[datetime] = mapped_column(index=True)
    ends_at: Mapped[datetime]
    chair_id: Mapped[str] = mapped_column(sa.ForeignKey("resources.resource_id"))
    clinician_id: Mapped[str] = mapped_column(sa.ForeignKey("resources.resource_id"))
    status: Mapped[str] = mapped_column(sa.String(20), default="scheduled")
    cancelled_at: Mapped[datetime | None]
    late_cancellation: Mapped[bool | None]
    cancelled_by_role: Mapped[str | None] = mapped_column(sa.String(20))
    booked_by: Mapped[str | None] = mapped_column(sa.String(160))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The patient confirmed fasting and an escort by replying to the
    # pre-visit message; shown at check-in.
    previsit_confirmed_at: Mapped[datetime | None]
    # When the retention timer looked at this completed session (once).
    retention_checked_at: Mapped[datetime | None]


class ResourceBooking(Base):
    """One row per grid slot a patient, chair or clinician is held by an
    appointment. The unique key is what makes a double booking impossible,
    even when two requests race: the second insert fails in the database."""

    __tablename__ = "resource_bookings"
    __table_args__ = (sa.UniqueConstraint("resource_kind", "resource_id", "slot_start",
                                          name="uq_resource_bookings_slot"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    resource_kind: Mapped[str] = mapped_column(sa.String(20))
    resource_id: Mapped[str] = mapped_column(sa.String(36))
    slot_start: Mapped[datetime]
    appointment_id: Mapped[str] = mapped_column(
        sa.ForeignKey("appointments.appointment_id", ondelete="CASCADE"), index=True)



class SessionRecord(Base):
    """The monitored treatment session of one appointment."""

    __tablename__ = "session_records"

    session_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    appointment_id: Mapped[str] = mapped_column(sa.ForeignKey("appointments.appointment_id"), unique=True)
    plan_id: Mapped[str] = mapped_column(sa.ForeignKey("treatment_plans.plan_id"), index=True)
    patient_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    status: Mapped[str] = mapped_column(sa.String(20), default="checked_in")
    checked_in_at: Mapped[datetime] = mapped_column(default=utcnow)
    fasting_confirmed: Mapped[bool] = mapped_column(default=False)
    escort_confirmed: Mapped[bool] = mapped_column(default=False)
    weight_kg: Mapped[float | None] = mapped_column(sa.Numeric(5, 1, asdecimal=False))
    baseline_vitals: Mapped[dict | None]
    pre_phq9: Mapped[int | None]
    pre_gad7: Mapped[int | None]
    mood_score: Mapped[int | None]
    route: Mapped[str] = mapped_column(sa.String(30))
    drug: Mapped[str] = mapped_column(sa.String(20))
    dose_mg: Mapped[float | None] = mapped_column(Mg)
    lot_number: Mapped[str | None] = mapped_column(sa.String(40))
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    dissociation_scale: Mapped[str | None] = mapped_column(sa.String(10))
    dissociation_score: Mapped[int | None]
    sedation_checked: Mapped[bool] = mapped_column(default=False)
    discharged_at: Mapped[datetime | None]
    discharge: Mapped[dict | None]
    aborted_at: Mapped[datetime | None]
    abort_reason_code: Mapped[str | None] = mapped_column(sa.String(40))
    abort_note: Mapped[str | None] = mapped_column(sa.Text)
    signed_by: Mapped[str | None] = mapped_column(sa.String(160))
    signed_at: Mapped[datetime | None]


class VitalsReading(Base):
    __tablename__ = "vitals_readings"

    reading_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    session_id: Mapped[str] = mapped_column(sa.ForeignKey("session_records.session_id"), index=True)
    recorded_at: Mapped[datetime]
    systolic: Mapped[int | None]
    diastolic: Mapped[int | None]
    heart_rate: Mapped[int | None]
    spo2: Mapped[int | None]
    respiratory_rate: Mapped[int | None]
    alerts: Mapped[list] = mapped_column(default=list)
    recorded_by: Mapped[str | None] = mapped_column(sa.String(160))


class SideEffect(Base):
    __tablename__ = "side_effects"

    side_effect_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    session_id: Mapped[str] = mapped_column(sa.ForeignKey("session_records.session_id"), index=True)
    effect: Mapped[str] = mapped_column(sa.String(40))
    severity: Mapped[str] = mapped_column(sa.String(10))
    serious: Mapped[bool] = mapped_column(default=False)
    intervention: Mapped[str | None] = mapped_column(sa.Text)
    recorded_at: Mapped[datetime]
    recorded_by: Mapped[str | None] = mapped_column(sa.String(160))


class Addendum(Base):
    __tablename__ = "addenda"

    addendum_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    session_id: Mapped[str] = mapped_column(sa.ForeignKey("session_records.session_id"), index=True)
    author: Mapped[str] = mapped_column(sa.String(160))
    text: Mapped[str] = mapped_column(sa.Text)
    written_at: Mapped[datetime] = mapped_column(default=utcnow)


class MonitoringForm(Base):
    """Spravato REMS Patient Monitoring Form, one per esketamine session,
    due within 7 days of the session."""

    __tablename__ = "monitoring_forms"

    form_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    session_id: Mapped[str] = mapped_column(sa.ForeignKey("session_records.session_id"), unique=True)
    patient_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    session_date: Mapped[date]
    due_on: Mapped[date] = mapped_column(index=True)
    content: Mapped[dict]
    submitted_at: Mapped[datetime | None]
    submitted_by: Mapped[str | None] = mapped_column(sa.String(160))
    confirmation: Mapped[str | None] = mapped_column(sa.String(60))


class OutcomeScore(Base):
    """The outcome series of a course: PHQ-9 and GAD-7 totals, taken by
    staff (at check-in, or e.g. at the end of the course) or reported by the
    patient by link. Response and remission count the PHQ-9 ones."""

    __tablename__ = "outcome_scores"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    plan_id: Mapped[str] = mapped_column(sa.ForeignKey("treatment_plans.plan_id"), index=True)
    session_id: Mapped[str | None] = mapped_column(sa.String(36))
    instrument: Mapped[str] = mapped_column(sa.String(10))
    # staff or self_report (see domain.ScoreSource)
    source: Mapped[str] = mapped_column(sa.String(20))
    total: Mapped[int]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class FrontDeskTask(Base):
    """Someone at the front desk should call the patient: a course at risk
    of lapsing or a visit not confirmed. ``open_key`` is set only while the
    task is open, and unique, so the rules that open tasks can fire again
    (timers on several replicas, a redelivered event) without a second one."""

    __tablename__ = "front_desk_tasks"

    task_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(sa.String(30), index=True)
    patient_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    plan_id: Mapped[str | None] = mapped_column(sa.String(36))
    appointment_id: Mapped[str | None] = mapped_column(sa.String(36))
    # Why it was opened, in the clinic's words; written by the service, never patient text.
    reason: Mapped[str] = mapped_column(sa.String(200))
    state: Mapped[str] = mapped_column(sa.String(10), default="open", index=True)
    open_key: Mapped[str | None] = mapped_column(sa.String(120), unique=True)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(sa.String(160))
    close_outcome: Mapped[str | None] = mapped_column(sa.String(10))
    close_reason: Mapped[str | None] = mapped_column(sa.Text)


class PreVisitReply(Base):
    """A patient's answer to the pre-visit message, once per reply."""

    __tablename__ = "previsit_replies"

    reply_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    appointment_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    answer: Mapped[str] = mapped_column(sa.String(20))
    received_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class SelfReportDue(Base):
    """A form the plan's schedule made due, one row per occasion: the row is
    the claim (its key decides which replica's timer announces it) and the
    record that ``self_report.due`` went out."""

    __tablename__ = "self_report_dues"

    due_id: Mapped[str] = mapped_column(sa.String(120), primary_key=True)
    plan_id: Mapped[str] = mapped_column(sa.ForeignKey("treatment_plans.plan_id"), index=True)
    patient_id: Mapped[str] = mapped_column(sa.String(36))
    questionnaire: Mapped[str] = mapped_column(sa.String(10))
    due_at: Mapped[datetime]
    announced_at: Mapped[datetime] = mapped_column(default=utcnow)


class RecordAccess(RecordAccessMixin, Base):
    """Who read or changed a patient's treatment record (plans, session
    records, outcomes); see common.audit."""

    subject_id: Mapped[str | None] = mapped_column(sa.String(36))

    def view(self) -> dict:
        return {**super().view(), "subject_id": self.subject_id}


# The shared Idempotency-Key store (common.idempotency), listed with this
# service's tables so its migrations are held to it like the rest.
idempotency_keys.to_metadata(Base.metadata)

"""What crosses sessions' boundary: validated inputs and the shapes returned."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import Field, field_validator, model_validator

from common.errors import field_error
from common.events import as_utc, iso
from common.validation import Schema, require_offset
from services.sessions import domain, retention
from services.sessions.models import (
    Addendum, Appointment, FrontDeskTask, MonitoringForm, PatientEligibility, Resource, SessionRecord, SideEffect,
    TreatmentPlan, VitalsReading,
)

RouteCode = Literal["iv_infusion", "im_injection", "intranasal_esketamine", "oral_sublingual"]
ResourceKind = Literal["chair", "clinician"]
Indication = Literal[
    "treatment_resistant_depression", "major_depressive_disorder", "bipolar_depression",
    "ptsd", "generalized_anxiety", "obsessive_compulsive_disorder", "chronic_pain",
    "suicidal_ideation", "other",
]
SideEffectKind = Literal["nausea", "vomiting", "dizziness", "headache", "anxiety", "raised_blood_pressure",
                         "sedation", "dissociation_distress", "other"]
Severity = Literal["mild", "moderate", "severe"]
AbortReason = Literal["vitals_alert", "adverse_event", "patient_request", "checklist_incomplete",
                      "equipment_failure", "eligibility", "other"]


def at_most_two_decimals(value: float | None) -> float | None:
    """A rate in mg/kg is kept to two decimals; rounding a third away would
    change the prescription (up, half the time), so it is refused instead."""
    if value is not None and Decimal(str(value)).as_tuple().exponent < -2:
        raise ValueError("give at most two decimals (mg/kg)")
    return value


class ResourceInput(Schema):
    kind: ResourceKind
    name: str = Field(min_length=1, max_length=120)


SelfReportForm = Literal["phq9", "gad7", "cssrs", "check_in"]


class SelfReportScheduleInput(Schema):
    """Which forms the patient is sent by link, per occasion; an empty list
    turns that occasion off, one left out keeps its current (or, for a new
    plan, its default) forms."""

    before_induction: list[SelfReportForm] = Field(default=None, max_length=4)
    weekly_in_maintenance: list[SelfReportForm] = Field(default=None, max_length=4)
    after_session: list[SelfReportForm] = Field(default=None, max_length=4)

    def given(self) -> dict:
        return {name: list(dict.fromkeys(forms)) for name, forms in self.model_dump(exclude_unset=True).items()
                if forms is not None}


class PlanInput(Schema):
    patient_id: str = Field(min_length=1, max_length=36)
    route: RouteCode
    indication: Indication
    mg_per_kg: float | None = Field(default=None, gt=0, le=5)
    fixed_dose_mg: float | None = Field(default=None, gt=0)
    max_dose_mg: float | None = Field(default=None, gt=0, le=1000)
    max_mg_per_kg: float | None = Field(default=None, gt=0, le=5)
    induction_sessions: int | None = Field(default=None, ge=1, le=12)
    min_hours_apart: int | None = Field(default=None, ge=0, le=24 * 14)
    maintenance_interval_days: int | None = Field(default=None, ge=1, le=180)
    self_report_schedule: SelfReportScheduleInput | None = None

    _rates = field_validator("mg_per_kg", "max_mg_per_kg")(at_most_two_decimals)


class PlanChanges(Schema):
    """Only the fields given are changed. What every plan has (indication,
    maximum dose, course length and spacing, status) admits no ``null``: a
    422 naming the field; a per-kg or fixed dose and the maintenance
    interval may be cleared."""

    indication: Indication = None
    mg_per_kg: float | None = Field(default=None, gt=0, le=5)
    fixed_dose_mg: float | None = Field(default=None, gt=0)
    max_dose_mg: float = Field(default=None, gt=0, le=1000)
    max_mg_per_kg: float | None = Field(default=None, gt=0, le=5)
    induction_sessions: int = Field(default=None, ge=1, le=12)
    min_hours_apart: int = Field(default=None, ge=0, le=24 * 14)
    maintenance_interval_days: int | None = Field(default=None, ge=1, le=180)
    status: Literal["active", "closed"] = None
    # null stops every self-report the schedule would send.
    self_report_schedule: SelfReportScheduleInput | None = None

    _rates = field_validator("mg_per_kg", "max_mg_per_kg")(at_most_two_decimals)


class BookingInput(Schema):
    plan_id: str = Field(min_length=1, max_length=36)
    starts_at: datetime
    chair_id: str = Field(min_length=1, max_length=36)
    clinician_id: str = Field(min_length=1, max_length=36)
    kind: Literal["induction", "maintenance"] | None = None

    _aware = field_validator("starts_at")(require_offset)


class CourseInput(Schema):
    first_starts_at: datetime
    chair_id: str = Field(min_length=1, max_length=36)
    clinician_id: str = Field(min_length=1, max_length=36)
    sessions: int | None = Field(default=None, ge=1, le=12)

    _aware = field_validator("first_starts_at")(require_offset)


class RescheduleInput(Schema):
    starts_at: datetime
    chair_id: str | None = Field(default=None, max_length=36)
    clinician_id: str | None = Field(default=None, max_length=36)

    _aware = field_validator("starts_at")(require_offset)


class FreeSlotsQuery(Schema):
    date: date
    route: RouteCode
    chair_id: str | None = None
    clinician_id: str | None = None


class Vitals(Schema):
    systolic: int | None = Field(default=None, ge=40, le=300)
    diastolic: int | None = Field(default=None, ge=20, le=200)
    heart_rate: int | None = Field(default=None, ge=20, le=250)
    spo2: int | None = Field(default=None, ge=50, le=100)
    respiratory_rate: int | None = Field(default=None, ge=2, le=60)

    @model_validator(mode="after")
    def _something_measured(self):
        if all(v is None for v in self.model_dump().values()):
            raise ValueError("give at least one measure")
        if (self.systolic is None) != (self.diastolic is None):
            raise ValueError("blood pressure needs both systolic and diastolic")
        if self.systolic is not None and self.diastolic >= self.systolic:
            raise ValueError("diastolic must be below systolic")
        return self


class BaselineVitals(Vitals):
    # A baseline is the full set: discharge compares against it.
    systolic: int = Field(ge=40, le=300)
    diastolic: int = Field(ge=20, le=200)
    heart_rate: int = Field(ge=20, le=250)
    spo2: int = Field(ge=50, le=100)
    respiratory_rate: int | None = Field(default=None, ge=2, le=60)


class Checklist(Schema):
    fasting_confirmed: bool | None = None
    escort_confirmed: bool | None = None
    weight_kg: float | None = Field(default=None, gt=20, lt=400)
    baseline_vitals: BaselineVitals | None = None
    pre_phq9: int | None = Field(default=None, ge=0, le=27)
    pre_gad7: int | None = Field(default=None, ge=0, le=21)
    mood_score: int | None = Field(default=None, ge=0, le=10)


class CheckInInput(Checklist):
    # Charted after the fact: when the patient actually arrived.
    checked_in_at: datetime | None = None

    _aware = field_validator("checked_in_at")(require_offset)


class StartInput(Schema):
    lot_number: str = Field(min_length=1, max_length=40)
    dose_mg: float | None = Field(default=None, gt=0)
    started_at: datetime | None = None

    _aware = field_validator("started_at")(require_offset)


class VitalsInput(Vitals):
    recorded_at: datetime | None = None

    _aware = field_validator("recorded_at")(require_offset)


class ObservationInput(Schema):
    dissociation_scale: Literal["cadss", "0-10"] | None = None
    dissociation_score: int | None = Field(default=None, ge=0, le=92)
    sedation_checked: bool | None = None

    @model_validator(mode="after")
    def _scale_bounds(self):
        if (self.dissociation_scale is None) != (self.dissociation_score is None):
            raise ValueError("give dissociation_scale and dissociation_score together")
        if self.dissociation_scale == "0-10" and self.dissociation_score > 10:
            raise ValueError("a 0-10 dissociation score cannot be above 10")
        return self


class SideEffectInput(Schema):
    effect: SideEffectKind
    severity: Severity
    serious: bool = False
    intervention: str | None = Field(default=None, max_length=1000)
    recorded_at: datetime | None = None

    _aware = field_validator("recorded_at")(require_offset)


class CompletionInput(Schema):
    """Dosing ended at ``stopped_at`` (end of the infusion); the patient is
    discharged at ``discharged_at`` when the criteria are met."""

    stopped_at: datetime | None = None
    discharged_at: datetime | None = None
    alert_and_oriented: bool
    escort_present: bool
    no_driving_advised: bool

    _aware = field_validator("stopped_at", "discharged_at")(require_offset)


class AbortInput(Schema):
    reason_code: AbortReason
    note: str | None = Field(default=None, max_length=2000)


class TaskClosure(Schema):
    """``booked``: the patient is on the schedule again; ``declined``: the
    patient does not want to go on, with the reason they gave. (``confirmed``
    is the patient's own, by replying YES to the pre-visit message.)"""

    outcome: Literal["booked", "declined"]
    reason: str | None = Field(default=None, max_length=500)


def task_state(value) -> str:
    if value not in {s.value for s in retention.TaskState}:
        raise field_error("state", "must be open or closed")
    return value


def task_kind(value) -> str:
    if value not in {k.value for k in retention.TaskKind}:
        raise field_error("kind", "must be one of " + ", ".join(k.value for k in retention.TaskKind))
    return value


class AddendumInput(Schema):
    text: str = Field(min_length=3, max_length=4000)


class RemsEnrollmentInput(Schema):
    enrollment_id: str = Field(min_length=3, max_length=60)
    enrolled_on: date


class MonitoringFormSubmission(Schema):
    confirmation: str = Field(min_length=1, max_length=60)


class PHQ9Input(Schema):
    total: int = Field(ge=0, le=27)






# ------------------------------------------------------------------ views


def measures(reading: VitalsReading) -> dict:
    return {m: getattr(reading, m) for m in ("systolic", "diastolic", "heart_rate", "spo2", "respiratory_rate")}


def resource_view(record: Resource) -> dict:
    return {"resource_id": record.resource_id, "kind": record.kind, "name": record.name, "active": record.active}


def eligibility_view(row: PatientEligibility) -> dict:
    return {"patient_id": row.patient_id, "mrn": row.mrn, "intake_status": row.intake_status,
            "treatment_consent": row.treatment_consent, "weight_kg": row.weight_kg,
            "baseline_phq9": row.baseline_phq9, "time_zone": row.time_zone,
            "rems_enrollment_id": row.rems_enrollment_id,
            "rems_enrolled_on": row.rems_enrolled_at.isoformat() if row.rems_enrolled_at else None,
            "eligible": row.intake_status == "approved" and row.treatment_consent != "withdrawn"}


def plan_view(record: TreatmentPlan) -> dict:
    return {"plan_id": record.plan_id, "patient_id": record.patient_id, "route": record.route,
            "drug": record.drug, "indication": record.indication, "mg_per_kg": record.mg_per_kg,
            "fixed_dose_mg": record.fixed_dose_mg, "max_dose_mg": record.max_dose_mg,
            "max_mg_per_kg": record.max_mg_per_kg, "induction_sessions": record.induction_sessions, "min_hours_apart": record.min_hours_apart,
            "maintenance_interval_days": record.maintenance_interval_days, "baseline_phq9": record.baseline_phq9,
            "self_report_schedule": record.self_report_schedule, "status": record.status, "course_completed_at": iso(record.course_completed_at),
            "created_by": record.created_by, "created_at": iso(record.created_at),
            "updated_by": record.updated_by, "updated_at": iso(record.updated_at)}


def appointment_view(record: Appointment) -> dict:
    return {"appointment_id": record.appointment_id, "plan_id": record.plan_id, "patient_id": record.patient_id,
            "kind": record.kind, "sequence": record.sequence, "route": record.route,
            "starts_at": iso(record.starts_at), "ends_at": iso(record.ends_at), "chair_id": record.chair_id,
            "clinician_id": record.clinician_id, "status": record.status, "cancelled_at": iso(record.cancelled_at),
            "late_cancellation": record.late_cancellation, "cancelled_by_role": record.cancelled_by_role,
            "previsit": previsit_view(record)}


def previsit_view(record: Appointment) -> dict:
    """The pre-visit checklist (fasting, escort) as the patient confirmed it
    by replying to the pre-visit message; what the check-in screen shows."""
    confirmed_at = iso(record.previsit_confirmed_at)
    return {"confirmed": confirmed_at is not None, "fasting_confirmed": confirmed_at is not None,
            "escort_confirmed": confirmed_at is not None, "confirmed_at": confirmed_at,
            "note": f"confirmed by patient reply at {confirmed_at}" if confirmed_at else None}


def task_view(task: FrontDeskTask, patient: PatientEligibility | None) -> dict:
    return {"task_id": task.task_id, "kind": task.kind, "state": task.state, "reason": task.reason,
            "patient_id": task.patient_id, "mrn": patient.mrn if patient else None,
            "patient_name": " ".join(filter(None, (patient.given_name, patient.family_name))) or None
            if patient else None,
            "plan_id": task.plan_id, "appointment_id": task.appointment_id,
            "opened_at": iso(task.opened_at), "closed_at": iso(task.closed_at), "closed_by": task.closed_by,
            "close_outcome": task.close_outcome, "close_reason": task.close_reason}


def reading_view(reading: VitalsReading) -> dict:
    return {"reading_id": reading.reading_id, "recorded_at": iso(reading.recorded_at), **measures(reading),
            "alerts": reading.alerts}


def side_effect_view(entry: SideEffect) -> dict:
    return {"side_effect_id": entry.side_effect_id, "effect": entry.effect, "severity": entry.severity,
            "serious": entry.serious, "intervention": entry.intervention, "recorded_at": iso(entry.recorded_at),
            "recorded_by": entry.recorded_by}


def addendum_view(entry: Addendum) -> dict:
    return {"addendum_id": entry.addendum_id, "author": entry.author, "text": entry.text,
            "written_at": iso(entry.written_at)}


def form_view(form: MonitoringForm, today: date) -> dict:
    return {"form_id": form.form_id, "session_id": form.session_id, "patient_id": form.patient_id,
            "session_date": form.session_date.isoformat(), "due_on": form.due_on.isoformat(),
            "overdue": form.submitted_at is None and form.due_on < today,
            "submitted_at": iso(form.submitted_at), "submitted_by": form.submitted_by,
            "confirmation": form.confirmation, "content": form.content}


def checklist_facts(record: SessionRecord) -> dict:
    return {"fasting_confirmed": record.fasting_confirmed, "escort_confirmed": record.escort_confirmed,
            "weight_kg": record.weight_kg, "baseline_vitals": record.baseline_vitals,
            "pre_phq9": record.pre_phq9, "mood_score": record.mood_score}


def session_view(record: SessionRecord, readings: list[VitalsReading], effects, addenda,
                 form: MonitoringForm | None, appointment: Appointment | None = None) -> dict:
    """The whole record: ``readings`` in time order, with its side effects,
    addenda and REMS monitoring form (if any)."""
    return {
        "session_id": record.session_id, "appointment_id": record.appointment_id, "plan_id": record.plan_id,
        "patient_id": record.patient_id, "status": record.status, "checked_in_at": iso(record.checked_in_at),
        "checklist": {"fasting_confirmed": record.fasting_confirmed, "escort_confirmed": record.escort_confirmed,
                      "weight_kg": record.weight_kg, "baseline_vitals": record.baseline_vitals,
                      "pre_phq9": record.pre_phq9, "pre_gad7": record.pre_gad7, "mood_score": record.mood_score,
                      "missing": domain.missing_checklist_items(checklist_facts(record)),
                      "previsit": previsit_view(appointment) if appointment is not None else None},
        "route": record.route, "drug": record.drug, "dose_mg": record.dose_mg, "lot_number": record.lot_number,
        "started_at": iso(record.started_at), "ended_at": iso(record.ended_at),
        "duration_minutes": domain.minutes_between(as_utc(record.started_at), as_utc(record.ended_at)),
        "vitals": [reading_view(r) for r in readings],
        "monitoring_gaps": [{"from": iso(a), "to": iso(b), "minutes": domain.minutes_between(a, b)}
                            for a, b in domain.monitoring_gaps(
                                as_utc(record.started_at), as_utc(record.ended_at),
                                [as_utc(r.recorded_at) for r in readings])] if record.started_at else [],
        "dissociation": {"scale": record.dissociation_scale, "score": record.dissociation_score},
        "sedation_checked": record.sedation_checked,
        "side_effects": [side_effect_view(e) for e in effects],
        "discharged_at": iso(record.discharged_at), "discharge": record.discharge,
        "aborted_at": iso(record.aborted_at), "abort_reason_code": record.abort_reason_code,
        "abort_note": record.abort_note,
        "signed_by": record.signed_by, "signed_at": iso(record.signed_at),
        "addenda": [addendum_view(a) for a in addenda],
        "monitoring_form_id": form.form_id if form else None,
    }

"""What crosses sessions' boundary: validated inputs and the shapes returned."""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Literal

from pydantic import Field, field_validator, model_validator

from common.validation import Schema

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


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("must include a time zone offset, e.g. 2026-11-24T15:00:00Z")
    return value.astimezone(timezone.utc) if value is not None else None


class ResourceInput(Schema):
    kind: ResourceKind
    name: str = Field(min_length=1, max_length=120)


class PlanInput(Schema):
    patient_id: str = Field(min_length=1, max_length=36)
    route: RouteCode
    indication: Indication
    mg_per_kg: float | None = Field(default=None, gt=0, le=5)
    fixed_dose_mg: float | None = Field(default=None, gt=0)
    max_dose_mg: float | None = Field(default=None, gt=0, le=1000)
    induction_sessions: int | None = Field(default=None, ge=1, le=12)
    min_hours_apart: int | None = Field(default=None, ge=0, le=24 * 14)
    maintenance_interval_days: int | None = Field(default=None, ge=1, le=180)


class PlanChanges(Schema):
    """Only the fields given are changed."""

    indication: Indication | None = None
    mg_per_kg: float | None = Field(default=None, gt=0, le=5)
    fixed_dose_mg: float | None = Field(default=None, gt=0)
    max_dose_mg: float | None = Field(default=None, gt=0, le=1000)
    induction_sessions: int | None = Field(default=None, ge=1, le=12)
    min_hours_apart: int | None = Field(default=None, ge=0, le=24 * 14)
    maintenance_interval_days: int | None = Field(default=None, ge=1, le=180)
    status: Literal["active", "closed"] | None = None


class BookingInput(Schema):
    plan_id: str = Field(min_length=1, max_length=36)
    starts_at: datetime
    chair_id: str = Field(min_length=1, max_length=36)
    clinician_id: str = Field(min_length=1, max_length=36)
    kind: Literal["induction", "maintenance"] | None = None

    _aware = field_validator("starts_at")(_aware)


class CourseInput(Schema):
    first_starts_at: datetime
    chair_id: str = Field(min_length=1, max_length=36)
    clinician_id: str = Field(min_length=1, max_length=36)
    sessions: int | None = Field(default=None, ge=1, le=12)

    _aware = field_validator("first_starts_at")(_aware)


class RescheduleInput(Schema):
    starts_at: datetime
    chair_id: str | None = Field(default=None, max_length=36)
    clinician_id: str | None = Field(default=None, max_length=36)

    _aware = field_validator("starts_at")(_aware)


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
    mood_score: int | None = Field(default=None, ge=0, le=10)


class StartInput(Schema):
    lot_number: str = Field(min_length=1, max_length=40)
    dose_mg: float | None = Field(default=None, gt=0)
    started_at: datetime | None = None

    _aware = field_validator("started_at")(_aware)


class VitalsInput(Vitals):
    recorded_at: datetime | None = None

    _aware = field_validator("recorded_at")(_aware)


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

    _aware = field_validator("recorded_at")(_aware)


class CompletionInput(Schema):
    """Dosing ended at ``stopped_at`` (end of the infusion); the patient is
    discharged at ``discharged_at`` when the criteria are met."""

    stopped_at: datetime | None = None
    discharged_at: datetime | None = None
    alert_and_oriented: bool
    escort_present: bool
    no_driving_advised: bool

    _aware = field_validator("stopped_at", "discharged_at")(_aware)


class AbortInput(Schema):
    reason_code: AbortReason
    note: str | None = Field(default=None, max_length=2000)


class AddendumInput(Schema):
    text: str = Field(min_length=3, max_length=4000)


class RemsEnrollmentInput(Schema):
    enrollment_id: str = Field(min_length=3, max_length=60)
    enrolled_on: date


class MonitoringFormSubmission(Schema):
    confirmation: str = Field(min_length=1, max_length=60)


class PHQ9Input(Schema):
    total: int = Field(ge=0, le=27)


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def aware(moment: datetime | None) -> datetime | None:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment

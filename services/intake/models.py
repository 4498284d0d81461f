"""Intake's own tables. Nothing outside this service reads them."""
from __future__ import annotations

import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from common.audit import RecordAccessMixin
from common.idempotency import idempotency_keys
from common.events import utcnow


class Base(DeclarativeBase):
    type_annotation_map = {datetime: sa.DateTime(timezone=True), dict: sa.JSON, list: sa.JSON}


def new_id() -> str:
    return str(uuid.uuid4())


def mrn_of(number: int) -> str:
    """The medical record number the clinic prints, from the patient's key."""
    return f"MRN{number:07d}"


class Patient(Base):
    __tablename__ = "patients"

    # The integer key numbers the MRN; the UUID is what other services and
    # systems hold.
    number: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(sa.String(36), unique=True, default=new_id)
    given_name: Mapped[str] = mapped_column(sa.String(100))
    family_name: Mapped[str] = mapped_column(sa.String(100), index=True)
    date_of_birth: Mapped[date] = mapped_column(index=True)
    sex: Mapped[str] = mapped_column(sa.String(20))
    phone: Mapped[str | None] = mapped_column(sa.String(20))
    email: Mapped[str | None] = mapped_column(sa.String(254))
    time_zone: Mapped[str] = mapped_column(sa.String(64))
    emergency_contact: Mapped[dict | None]
    weight_kg: Mapped[float | None] = mapped_column(sa.Numeric(5, 1, asdecimal=False))
    height_cm: Mapped[float | None] = mapped_column(sa.Numeric(5, 1, asdecimal=False))
    primary_condition: Mapped[str] = mapped_column(sa.String(60))
    diagnosis_codes: Mapped[list] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    intake: Mapped["IntakeCase"] = relationship(back_populates="patient", uselist=False, lazy="joined")

    @property
    def mrn(self) -> str:
        return mrn_of(self.number)

    @property
    def intake_status(self) -> str | None:
        return self.intake.status if self.intake else None




class IntakeCase(Base):
    """Where the patient stands on the way to treatment (one per patient)."""

    __tablename__ = "intake_cases"

    patient_number: Mapped[int] = mapped_column(sa.ForeignKey("patients.number"), primary_key=True)
    status: Mapped[str] = mapped_column(sa.String(20), default="registered")
    submitted_at: Mapped[datetime | None]
    screening_id: Mapped[str | None] = mapped_column(sa.String(36))
    screening_outcome: Mapped[str | None] = mapped_column(sa.String(20))
    decision: Mapped[str | None] = mapped_column(sa.String(10))
    decided_by: Mapped[str | None] = mapped_column(sa.String(120))
    decided_at: Mapped[datetime | None]
    decision_reason: Mapped[str | None] = mapped_column(sa.Text)

    patient: Mapped[Patient] = relationship(back_populates="intake")


class Consent(Base):
    __tablename__ = "consents"

    consent_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    patient_number: Mapped[int] = mapped_column(sa.ForeignKey("patients.number"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(20))
    given_at: Mapped[datetime]
    method: Mapped[str] = mapped_column(sa.String(20))
    recorded_by: Mapped[str | None] = mapped_column(sa.String(120))
    withdrawn_at: Mapped[datetime | None]
    withdrawn_by: Mapped[str | None] = mapped_column(sa.String(120))


class MedicalHistory(Base):
    """Each recording is kept; the newest is the current history."""

    __tablename__ = "medical_histories"

    history_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    patient_number: Mapped[int] = mapped_column(sa.ForeignKey("patients.number"), index=True)
    conditions: Mapped[list] = mapped_column(default=list)
    other_conditions: Mapped[str | None] = mapped_column(sa.Text)
    medications: Mapped[list] = mapped_column(default=list)
    allergies: Mapped[list] = mapped_column(default=list)
    ketamine_hypersensitivity: Mapped[bool] = mapped_column(default=False)
    pregnant: Mapped[bool] = mapped_column(default=False)
    last_myocardial_infarction: Mapped[date | None]
    previous_ketamine_treatment: Mapped[bool] = mapped_column(default=False)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_by: Mapped[str | None] = mapped_column(sa.String(120))


class QuestionnaireResponse(Base):
    __tablename__ = "questionnaire_responses"

    response_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    patient_number: Mapped[int] = mapped_column(sa.ForeignKey("patients.number"), index=True)
    instrument: Mapped[str] = mapped_column(sa.String(10))
    answers: Mapped[list]
    total: Mapped[int]
    band: Mapped[str] = mapped_column(sa.String(30))
    risk_flags: Mapped[list] = mapped_column(default=list)
    completed_at: Mapped[datetime]
    recorded_by: Mapped[str | None] = mapped_column(sa.String(120))


class Screening(Base):
    __tablename__ = "screenings"

    screening_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    patient_number: Mapped[int] = mapped_column(sa.ForeignKey("patients.number"), index=True)
    systolic: Mapped[int]
    diastolic: Mapped[int]
    outcome: Mapped[str] = mapped_column(sa.String(20))
    reasons: Mapped[list]
    screened_at: Mapped[datetime] = mapped_column(default=utcnow)
    screened_by: Mapped[str | None] = mapped_column(sa.String(120))


class RecordAccess(RecordAccessMixin, Base):
    """Who read or changed a patient's intake record (see common.audit)."""


# The shared Idempotency-Key store (common.idempotency), listed with this
# service's tables so its migrations are held to it like the rest.
idempotency_keys.to_metadata(Base.metadata)


class SelfReportRequest(Base):
    """A questionnaire sent to the patient by link. Only the token's SHA-256
    is kept (common.self_report_links): the link cannot be rebuilt from here."""

    __tablename__ = "self_report_requests"

    request_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    patient_number: Mapped[int] = mapped_column(sa.ForeignKey("patients.number"), index=True)
    questionnaire: Mapped[str] = mapped_column(sa.String(10))
    channel: Mapped[str] = mapped_column(sa.String(10))
    requested_by: Mapped[str | None] = mapped_column(sa.String(120))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    response_id: Mapped[str | None] = mapped_column(sa.String(36))

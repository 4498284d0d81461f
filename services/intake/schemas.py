"""What crosses intake's boundary: validated inputs and the shapes returned."""
from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import EmailStr, Field, field_validator

from common.validation import Schema
from services.intake.domain import INSTRUMENTS, KNOWN_CONDITIONS

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
ICD10 = re.compile(r"^[A-TV-Z]\d{2}(\.[0-9A-Z]{1,4})?$")

Sex = Literal["female", "male", "other", "unknown"]
PrimaryCondition = Literal[
    "treatment_resistant_depression", "major_depressive_disorder", "bipolar_depression",
    "ptsd", "generalized_anxiety", "obsessive_compulsive_disorder", "chronic_pain", "other",
]
ConsentKind = Literal["treatment", "sms", "email"]
ConsentMethod = Literal["written", "electronic", "verbal"]


def _e164(value: str | None) -> str | None:
    if value is None:
        return value
    compact = re.sub(r"[\s\-().]", "", value)
    if not E164.match(compact):
        raise ValueError("must be an E.164 number such as +14155550123")
    return compact


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("must be an IANA time zone such as America/New_York") from None
    return value


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("must include a time zone offset, e.g. 2026-11-24T15:04:05Z")
    return value


class EmergencyContact(Schema):
    name: str = Field(min_length=1, max_length=120)
    phone: str
    relationship: str | None = Field(default=None, max_length=60)

    _phone = field_validator("phone")(_e164)


class PatientFields(Schema):
    given_name: str = Field(min_length=1, max_length=100)
    family_name: str = Field(min_length=1, max_length=100)
    date_of_birth: date
    sex: Sex
    phone: str | None = None
    email: EmailStr | None = None
    time_zone: str = "America/New_York"
    emergency_contact: EmergencyContact | None = None
    weight_kg: float | None = Field(default=None, gt=20, lt=400)
    height_cm: float | None = Field(default=None, gt=50, lt=260)
    primary_condition: PrimaryCondition
    diagnosis_codes: list[str] = Field(default_factory=list, max_length=12)

    _phone = field_validator("phone")(_e164)
    _tz = field_validator("time_zone")(_time_zone)

    @field_validator("date_of_birth")
    @classmethod
    def _born_in_the_past(cls, value: date) -> date:
        if value >= date.today():
            raise ValueError("must be in the past")
        if value.year < 1900:
            raise ValueError("must be after 1900")
        return value

    @field_validator("diagnosis_codes")
    @classmethod
    def _icd10(cls, codes: list[str]) -> list[str]:
        for code in codes:
            if not ICD10.match(code.upper()):
                raise ValueError(f"{code!r} is not an ICD-10 code such as F33.2")
        return [code.upper() for code in codes]


class PatientUpdate(Schema):
    """Only the fields given are changed."""

    given_name: str | None = Field(default=None, min_length=1, max_length=100)
    family_name: str | None = Field(default=None, min_length=1, max_length=100)
    date_of_birth: date | None = None
    sex: Sex | None = None
    phone: str | None = None
    email: EmailStr | None = None
    time_zone: str | None = None
    emergency_contact: EmergencyContact | None = None
    weight_kg: float | None = Field(default=None, gt=20, lt=400)
    height_cm: float | None = Field(default=None, gt=50, lt=260)
    primary_condition: PrimaryCondition | None = None
    diagnosis_codes: list[str] | None = None

    _phone = field_validator("phone")(_e164)
    _tz = field_validator("time_zone")(lambda value: value if value is None else _time_zone(value))
    _icd10 = field_validator("diagnosis_codes")(
        lambda codes: codes if codes is None else PatientFields._icd10(codes)
    )
    _dob = field_validator("date_of_birth")(
        lambda value: value if value is None else PatientFields._born_in_the_past(value)
    )


class PatientSearch(Schema):
    name: str | None = Field(default=None, min_length=2, max_length=100)
    date_of_birth: date | None = None
    mrn: str | None = Field(default=None, max_length=20)
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0)


class ConsentInput(Schema):
    kind: ConsentKind
    given_at: datetime | None = None
    method: ConsentMethod

    _aware = field_validator("given_at")(_aware)


class ConsentWithdrawal(Schema):
    kind: ConsentKind
    withdrawn_at: datetime | None = None

    _aware = field_validator("withdrawn_at")(_aware)


class Medication(Schema):
    name: str = Field(min_length=1, max_length=120)
    dose: str | None = Field(default=None, max_length=60)
    frequency: str | None = Field(default=None, max_length=60)


class MedicalHistoryInput(Schema):
    conditions: list[str] = Field(default_factory=list)
    other_conditions: str | None = Field(default=None, max_length=4000)
    medications: list[Medication] = Field(default_factory=list)
    allergies: list[str] = Field(default_factory=list)
    ketamine_hypersensitivity: bool = False
    pregnant: bool = False
    last_myocardial_infarction: date | None = None
    previous_ketamine_treatment: bool = False

    @field_validator("conditions")
    @classmethod
    def _known(cls, conditions: list[str]) -> list[str]:
        unknown = [c for c in conditions if c not in KNOWN_CONDITIONS]
        if unknown:
            raise ValueError(
                f"unknown condition code(s) {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_CONDITIONS))}"
                " (describe anything else in other_conditions)"
            )
        return sorted(set(conditions))


class QuestionnaireInput(Schema):
    instrument: str
    # Checked item by item by the domain, which names the offending item.
    answers: list
    completed_at: datetime | None = None

    _aware = field_validator("completed_at")(_aware)

    @field_validator("instrument")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in INSTRUMENTS:
            raise ValueError(f"must be one of {', '.join(INSTRUMENTS)}")
        return value


class ScreeningInput(Schema):
    systolic: int = Field(ge=60, le=300)
    diastolic: int = Field(ge=30, le=200)


class ApprovalInput(Schema):
    reason: str = Field(min_length=3, max_length=2000)
    relative_contraindications_reviewed: bool = False
    clinician: str | None = Field(default=None, max_length=120)


class DeclineInput(Schema):
    reason: str = Field(min_length=3, max_length=2000)
    clinician: str | None = Field(default=None, max_length=120)


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")

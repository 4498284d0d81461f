"""What crosses intake's boundary: validated inputs and the shapes returned."""
from __future__ import annotations

import re
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import EmailStr, Field, field_validator

from common.events import iso
from common.validation import Schema, require_offset
from services.intake.domain import INSTRUMENTS, KNOWN_CONDITIONS
from services.intake.models import Consent, MedicalHistory, Patient, QuestionnaireResponse, Screening, mrn_of

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
    """Only the fields given are changed. A field every patient has (a name,
    the date of birth, sex, time zone, condition, codes) cannot be emptied
    with ``null``: its type admits no null, so that is a 422 naming it;
    contact details and measurements may be cleared."""

    given_name: str = Field(default=None, min_length=1, max_length=100)
    family_name: str = Field(default=None, min_length=1, max_length=100)
    date_of_birth: date = None
    sex: Sex = None
    phone: str | None = None
    email: EmailStr | None = None
    time_zone: str = None
    emergency_contact: EmergencyContact | None = None
    weight_kg: float | None = Field(default=None, gt=20, lt=400)
    height_cm: float | None = Field(default=None, gt=50, lt=260)
    primary_condition: PrimaryCondition = None
    diagnosis_codes: list[str] = None

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

    _aware = field_validator("given_at")(require_offset)


class ConsentWithdrawal(Schema):
    kind: ConsentKind
    withdrawn_at: datetime | None = None

    _aware = field_validator("withdrawn_at")(require_offset)


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

    _aware = field_validator("completed_at")(require_offset)

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




# ------------------------------------------------------------ output views
# What intake returns to callers and puts in events, built from its models.


def mrn_number(mrn: str) -> int | None:
    digits = mrn.strip().upper().removeprefix("MRN")
    return int(digits) if digits.isdigit() else None


def patient_facts(record: Patient) -> dict:
    """What other services may keep about a patient: identity, contact and
    billing facts. No history, scores or notes. ``record``: a ``Patient`` or
    a row of its columns (and ``intake_status`` for ``patient_view``)."""
    return {
        "patient_id": record.patient_id, "mrn": mrn_of(record.number),
        "given_name": record.given_name, "family_name": record.family_name,
        "date_of_birth": record.date_of_birth.isoformat(), "sex": record.sex,
        "phone": record.phone, "email": record.email, "time_zone": record.time_zone,
        "diagnosis_codes": list(record.diagnosis_codes or []),
    }


def patient_view(record: Patient) -> dict:
    return {
        **patient_facts(record),
        "emergency_contact": record.emergency_contact,
        "weight_kg": record.weight_kg, "height_cm": record.height_cm,
        "primary_condition": record.primary_condition,
        "intake_status": record.intake_status,
        "created_at": iso(record.created_at), "updated_at": iso(record.updated_at),
    }


def consent_facts(record: Patient, consent: Consent) -> dict:
    return {
        "patient_id": record.patient_id, "consent_id": consent.consent_id, "kind": consent.kind,
        "status": "withdrawn" if consent.withdrawn_at else "granted",
        "effective_at": iso(consent.withdrawn_at or consent.given_at),
    }


def consent_view(consent: Consent) -> dict:
    return {
        "consent_id": consent.consent_id, "kind": consent.kind, "method": consent.method,
        "given_at": iso(consent.given_at), "recorded_by": consent.recorded_by,
        "withdrawn_at": iso(consent.withdrawn_at), "withdrawn_by": consent.withdrawn_by,
        "status": "withdrawn" if consent.withdrawn_at else "granted",
    }


def consent_summary(consents) -> dict:
    return granted_consents({c.kind for c in consents if c.withdrawn_at is None})


def granted_consents(kinds) -> dict:
    granted = set(kinds or ())
    return {kind: kind in granted for kind in ("treatment", "sms", "email")}


def history_view(entry: MedicalHistory) -> dict:
    return {
        "history_id": entry.history_id, "conditions": entry.conditions,
        "other_conditions": entry.other_conditions, "medications": entry.medications,
        "allergies": entry.allergies, "ketamine_hypersensitivity": entry.ketamine_hypersensitivity,
        "pregnant": entry.pregnant,
        "last_myocardial_infarction": entry.last_myocardial_infarction.isoformat()
        if entry.last_myocardial_infarction else None,
        "previous_ketamine_treatment": entry.previous_ketamine_treatment,
        "recorded_at": iso(entry.recorded_at), "recorded_by": entry.recorded_by,
    }


def questionnaire_view(entry: QuestionnaireResponse) -> dict:
    return {
        "response_id": entry.response_id, "instrument": entry.instrument, "answers": entry.answers,
        "total": entry.total, "band": entry.band, "risk_flags": entry.risk_flags,
        "completed_at": iso(entry.completed_at),
    }


def screening_view(entry: Screening) -> dict:
    return {
        "screening_id": entry.screening_id, "outcome": entry.outcome, "reasons": entry.reasons,
        "systolic": entry.systolic, "diastolic": entry.diastolic,
        "screened_at": iso(entry.screened_at), "screened_by": entry.screened_by,
    }


def intake_view(record: Patient) -> dict:
    case = record.intake
    return {
        "patient_id": record.patient_id, "status": case.status, "submitted_at": iso(case.submitted_at),
        "screening_outcome": case.screening_outcome, "decision": case.decision,
        "decided_by": case.decided_by, "decided_at": iso(case.decided_at),
        "decision_reason": case.decision_reason,
    }

"""The shape of every answer the intake service gives (patients, consents,
medical history, questionnaires and the intake decision) as output models,
for the OpenAPI document and typed clients. The view builders in ``schemas``
build these answers as plain dicts; the gateway's document tests hold the
two together."""
from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from common.views import ItemList, Page, View


class EmergencyContactView(View):
    name: str | None = None
    phone: str | None = None
    relationship: str | None = None


class ConsentSummaryView(View):
    treatment: bool
    sms: bool
    email: bool


class PatientView(View):
    patient_id: str
    mrn: str
    given_name: str
    family_name: str
    date_of_birth: date
    sex: str
    phone: str | None
    email: str | None
    time_zone: str
    diagnosis_codes: list[str]
    emergency_contact: EmergencyContactView | None
    weight_kg: float | None
    height_cm: float | None
    primary_condition: str
    intake_status: str | None
    created_at: datetime | None
    updated_at: datetime | None


class PatientRecordView(PatientView):
    """A patient as read: with which consents are in force."""

    consents: ConsentSummaryView


class PatientPage(Page[PatientView]):
    pass


class ConsentView(View):
    consent_id: str
    kind: str
    method: str
    given_at: datetime | None
    recorded_by: str | None
    withdrawn_at: datetime | None
    withdrawn_by: str | None
    status: Literal["granted", "withdrawn"]


class ConsentList(ItemList[ConsentView]):
    pass


class MedicationView(View):
    name: str
    dose: str | None = None
    frequency: str | None = None


class MedicalHistoryView(View):
    history_id: str
    conditions: list[str]
    other_conditions: str | None
    medications: list[MedicationView]
    allergies: list[str]
    ketamine_hypersensitivity: bool
    pregnant: bool
    last_myocardial_infarction: date | None
    previous_ketamine_treatment: bool
    recorded_at: datetime | None
    recorded_by: str | None


class QuestionnaireView(View):
    response_id: str
    instrument: str
    answers: list
    total: int | None
    band: str | None
    risk_flags: list[str]
    completed_at: datetime | None


class QuestionnaireList(ItemList[QuestionnaireView]):
    pass


class ScreeningView(View):
    screening_id: str
    outcome: Literal["eligible", "needs_review", "ineligible"]
    reasons: list
    systolic: int | None
    diastolic: int | None
    screened_at: datetime | None
    screened_by: str | None


class IntakeView(View):
    patient_id: str
    status: str
    submitted_at: datetime | None
    screening_outcome: str | None
    decision: str | None
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None


class ScoreFacts(View):
    total: int | None
    band: str | None
    completed_at: datetime | None


class IntakeRecordView(IntakeView):
    """Where the intake stands, with the screening and the latest scores."""

    screening: ScreeningView | None = None
    scores: dict[str, ScoreFacts]


class SelfReportRequestView(View):
    """A questionnaire sent to the patient by link (never the link's token)."""

    request_id: str
    patient_id: str
    questionnaire: Literal["phq9", "gad7", "cssrs", "check_in"]
    channel: Literal["any", "email", "sms"]
    requested_by: str | None
    requested_at: datetime
    expires_at: datetime
    used_at: datetime | None
    response_id: str | None


class SelfReportRequestList(ItemList[SelfReportRequestView]):
    pass

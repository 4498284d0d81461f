"""The events intake publishes (exchange ``intake.events``): one contract
per event type and version, used by intake to emit and by every consumer to
read. Pure: nothing here touches the database or the broker.

Only identity, contact and decision facts leave intake: never questionnaire
answers, medical history or the reasons clinicians type."""
from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from common.events import EventData, EventPart, Instant


class IntakeEvent(EventData):
    producer = "intake"


class Score(EventPart):
    """The latest result of one questionnaire."""

    total: int
    band: str
    completed_at: Instant


class ScreeningReason(EventPart):
    """A contraindication found, by code only (its wording stays in intake)."""

    code: str
    severity: Literal["absolute", "relative", "note"]


Scores = dict[str, Score]
SCORES = "by instrument (`phq9`, `gad7`, `pcl5`, `cssrs`), the latest `{total, band, completed_at}`"


class PatientRegistered(IntakeEvent):
    """A patient is registered."""

    type = "patient.registered"

    patient_id: str
    mrn: str
    given_name: str
    family_name: str
    date_of_birth: date
    sex: str
    phone: str | None
    email: str | None
    time_zone: str = Field(description="IANA name, e.g. America/Los_Angeles")
    diagnosis_codes: list[str] = Field(description="ICD-10")


class PatientUpdated(PatientRegistered):
    """Any detail of a patient changes."""

    type = "patient.updated"

    changed: list[str] = Field(description="names of the fields that changed")


class ConsentRecorded(IntakeEvent):
    """A consent is given (or re-confirmed) or withdrawn."""

    type = "consent.recorded"

    patient_id: str
    consent_id: str
    kind: Literal["treatment", "sms", "email"]
    status: Literal["granted", "withdrawn"]
    effective_at: Instant


class IntakeSubmitted(IntakeEvent):
    """Consent, history, PHQ-9 and GAD-7 are in and the intake is submitted."""

    type = "intake.submitted"

    patient_id: str
    submitted_at: Instant


class IntakeScreened(IntakeEvent):
    """Contraindication screening ran (it may repeat before the decision)."""

    type = "intake.screened"

    patient_id: str
    screening_id: str
    outcome: Literal["eligible", "needs_review", "ineligible"]
    reasons: list[ScreeningReason]
    scores: Scores = Field(description=SCORES)


class IntakeApproved(IntakeEvent):
    """A clinician approved the intake."""

    type = "intake.approved"

    patient_id: str
    mrn: str
    decided_by: str
    decided_at: Instant
    screening_outcome: Literal["eligible", "needs_review", "ineligible"] | None
    diagnosis_codes: list[str] = Field(description="ICD-10")
    primary_condition: str
    weight_kg: float | None
    scores: Scores = Field(description=SCORES)


class IntakeDeclined(IntakeEvent):
    """A clinician declined the intake (the reason stays in intake)."""

    type = "intake.declined"

    patient_id: str
    decided_by: str
    decided_at: Instant


class PatientRiskFlagged(IntakeEvent):
    """PHQ-9 item 9 above 0, a positive C-SSRS screener, a "yes" to the
    post-session check-in's self-harm question, or a self-reported score
    that rose by 5 or more: staff are alerted at once."""

    type = "patient.risk_flagged"

    patient_id: str
    mrn: str
    flags: list[str] = Field(description="phq9_self_harm_thoughts, cssrs_positive, check_in_self_harm, score_rise "
                                         "(a self-reported total 5 or more above the previous one)")
    instrument: str
    band: str
    response_id: str


class SelfReportRequested(IntakeEvent):
    """Staff (or the treatment plan's schedule, through ``self_report.due``)
    asked the patient to fill in a questionnaire by secure link. The
    event carries the request id, never the link's token."""

    type = "self_report.requested"

    patient_id: str
    request_id: str
    channel: Literal["any", "email", "sms"]
    expires_at: Instant


class SelfReportCompleted(IntakeEvent):
    """The patient answered a self-report by its link; intake scored and
    stored it (the answers stay in intake)."""

    type = "self_report.completed"

    patient_id: str
    request_id: str
    response_id: str
    instrument: str = Field(description="phq9, gad7, cssrs or check_in")
    total: int
    band: str
    previous_total: int | None = Field(description="the previous score of the same instrument, if any")
    risk_flags: list[str]
    completed_at: Instant


# The instruments of a course's outcome series: the only staff-entered
# scores that leave intake (a PCL-5 or C-SSRS total has no reader outside).
OUTCOME_INSTRUMENTS = ("phq9", "gad7")


class QuestionnaireScored(IntakeEvent):
    """Staff entered a PHQ-9 or GAD-7 for the patient and intake scored and
    stored it (the answers stay in intake). A self-report is
    ``self_report.completed`` instead."""

    type = "questionnaire.scored"

    patient_id: str
    response_id: str
    instrument: Literal["phq9", "gad7"]
    total: int
    band: str
    completed_at: Instant
    source: Literal["staff"] = "staff"

"""Intake rules as plain code: questionnaire scoring, contraindication
screening and the intake state machine. Nothing here touches a database or
the broker, so every rule is tested directly."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import Enum

from common.errors import Conflict, ValidationFailed

# --------------------------------------------------------------------------
# Questionnaires
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Instrument:
    code: str
    title: str
    items: int
    min_answer: int
    max_answer: int
    # (lowest total, band) in ascending order; a total takes the last band
    # whose lower bound it reaches.
    bands: tuple[tuple[int, str], ...]


PHQ9 = Instrument("phq9", "PHQ-9", 9, 0, 3, (
    (0, "minimal"), (5, "mild"), (10, "moderate"), (15, "moderately_severe"), (20, "severe"),
))
GAD7 = Instrument("gad7", "GAD-7", 7, 0, 3, (
    (0, "minimal"), (5, "mild"), (10, "moderate"), (15, "severe"),
))
PCL5 = Instrument("pcl5", "PCL-5", 20, 0, 4, ())  # banded by the cut-off below
# Columbia Suicide Severity Rating Scale, screener version: six yes/no
# questions (answers 0 = no, 1 = yes), asked about the past month except 6.
CSSRS = Instrument("cssrs", "C-SSRS screener", 6, 0, 1, ())

INSTRUMENTS = {instrument.code: instrument for instrument in (PHQ9, GAD7, PCL5, CSSRS)}

PHQ9_SELF_HARM_ITEM = 9
DEFAULT_PCL5_CUTOFF = 33


@dataclass(frozen=True)
class QuestionnaireScore:
    instrument: str
    total: int
    band: str
    risk_flags: tuple[str, ...] = ()


def validate_answers(instrument: Instrument, answers) -> list[int]:
    """Every item present and in range, or an error naming each bad item."""
    if not isinstance(answers, (list, tuple)):
        raise ValidationFailed(
            f"{instrument.title} answers must be a list of {instrument.items} numbers",
            [{"field": "answers", "message": f"expected a list of {instrument.items} answers"}],
        )
    errors = []
    for number in range(1, instrument.items + 1):
        value = answers[number - 1] if number <= len(answers) else None
        field_name = f"answers.item{number}"
        if value is None:
            errors.append({"field": field_name, "message": f"item {number} is missing"})
        elif isinstance(value, bool) or not isinstance(value, int):
            errors.append({"field": field_name, "message": f"item {number} must be a whole number"})
        elif not instrument.min_answer <= value <= instrument.max_answer:
            errors.append({
                "field": field_name,
                # The value itself is left out: error messages end up in logs.
                "message": f"item {number} is outside {instrument.min_answer}–{instrument.max_answer}",
            })
    if len(answers) > instrument.items:
        errors.append({
            "field": "answers",
            "message": f"{instrument.title} has {instrument.items} items, got {len(answers)} answers",
        })
    if errors:
        raise ValidationFailed(
            f"{instrument.title} not scored: " + "; ".join(e["message"] for e in errors), errors
        )
    return list(answers)


def band_for(instrument: Instrument, total: int) -> str:
    band = instrument.bands[0][1]
    for lower, name in instrument.bands:
        if total >= lower:
            band = name
    return band


def score_questionnaire(code: str, answers, *, pcl5_cutoff: int = DEFAULT_PCL5_CUTOFF) -> QuestionnaireScore:
    instrument = INSTRUMENTS.get(code)
    if instrument is None:
        raise ValidationFailed(
            f"unknown questionnaire {code!r}; expected one of {', '.join(INSTRUMENTS)}",
            [{"field": "instrument", "message": f"unknown questionnaire {code!r}"}],
        )
    answers = validate_answers(instrument, answers)
    total = sum(answers)
    if instrument is PHQ9:
        flags = ("phq9_self_harm_thoughts",) if answers[PHQ9_SELF_HARM_ITEM - 1] > 0 else ()
        return QuestionnaireScore("phq9", total, band_for(PHQ9, total), flags)
    if instrument is GAD7:
        return QuestionnaireScore("gad7", total, band_for(GAD7, total))
    if instrument is PCL5:
        band = "probable_ptsd" if total >= pcl5_cutoff else "below_cutoff"
        return QuestionnaireScore("pcl5", total, band)
    return _score_cssrs(answers)


def _score_cssrs(answers: list[int]) -> QuestionnaireScore:
    wish_dead, thoughts, method, intent, plan, behaviour = (bool(a) for a in answers)
    if intent or plan or behaviour:
        band = "high_risk"
    elif method:
        band = "moderate_risk"
    elif wish_dead or thoughts:
        band = "low_risk"
    else:
        band = "negative"
    flags = ("cssrs_positive",) if band != "negative" else ()
    return QuestionnaireScore("cssrs", sum(answers), band, flags)


# --------------------------------------------------------------------------
# Contraindication screening
# --------------------------------------------------------------------------


class ScreeningOutcome(str, Enum):
    ELIGIBLE = "eligible"
    NEEDS_REVIEW = "needs_review"
    INELIGIBLE = "ineligible"


ABSOLUTE = "absolute"
RELATIVE = "relative"
NOTE = "note"

MAO_INHIBITORS = {"phenelzine", "tranylcypromine", "isocarboxazid", "selegiline", "moclobemide", "rasagiline"}
BENZODIAZEPINES = {
    "alprazolam", "clonazepam", "diazepam", "lorazepam", "temazepam", "oxazepam",
    "chlordiazepoxide", "clobazam", "midazolam", "triazolam",
}
LAMOTRIGINE = {"lamotrigine"}


@dataclass(frozen=True)
class ScreeningRules:
    """Clinic-configurable thresholds; defaults from DESIGN.md §4."""

    max_systolic: int = 160
    max_diastolic: int = 100
    bmi_airway_limit: float = 35.0
    recent_mi_weeks: int = 6
    pcl5_cutoff: int = DEFAULT_PCL5_CUTOFF

    @classmethod
    def from_config(cls, section: dict) -> "ScreeningRules":
        return cls(
            max_systolic=int(section.get("HYPERTENSION_SYSTOLIC", cls.max_systolic)),
            max_diastolic=int(section.get("HYPERTENSION_DIASTOLIC", cls.max_diastolic)),
            bmi_airway_limit=float(section.get("BMI_AIRWAY_LIMIT", cls.bmi_airway_limit)),
            recent_mi_weeks=int(section.get("RECENT_MI_WEEKS", cls.recent_mi_weeks)),
            pcl5_cutoff=int(section.get("PCL5_PROBABLE_PTSD_CUTOFF", cls.pcl5_cutoff)),
        )


@dataclass(frozen=True)
class ScreeningFacts:
    """What the screening looks at, gathered from the medical history and
    the blood pressure taken at the screening visit."""

    on_date: date
    systolic: int
    diastolic: int
    conditions: frozenset[str] = frozenset()
    medications: tuple[str, ...] = ()
    ketamine_hypersensitivity: bool = False
    pregnant: bool = False
    last_myocardial_infarction: date | None = None
    weight_kg: float | None = None
    height_cm: float | None = None


@dataclass(frozen=True)
class Reason:
    code: str
    severity: str
    message: str


@dataclass(frozen=True)
class ScreeningResult:
    outcome: ScreeningOutcome
    reasons: tuple[Reason, ...] = field(default_factory=tuple)


# Conditions recorded in the medical history by code; the message is what
# the clinician reads on the screening result.
ABSOLUTE_CONDITIONS = {
    "active_psychosis": "active psychosis",
    "schizophrenia": "schizophrenia diagnosis",
    "aneurysmal_vascular_disease": "history of aneurysmal vascular disease",
    "intracranial_haemorrhage": "history of intracranial haemorrhage",
}
RELATIVE_CONDITIONS = {
    "substance_use_disorder": "substance-use disorder",
    "bipolar_disorder": "bipolar disorder or history of mania",
    "stable_cardiovascular_disease": "stable cardiovascular disease",
    "liver_disease": "liver disease",
    "elevated_intracranial_pressure": "elevated intracranial pressure",
    "elevated_intraocular_pressure": "elevated intraocular pressure (e.g. glaucoma)",
}
KNOWN_CONDITIONS = {**ABSOLUTE_CONDITIONS, **RELATIVE_CONDITIONS}


def body_mass_index(weight_kg: float | None, height_cm: float | None) -> float | None:
    if not weight_kg or not height_cm:
        return None
    metres = height_cm / 100
    return round(weight_kg / (metres * metres), 1)


def screen_contraindications(facts: ScreeningFacts, rules: ScreeningRules = ScreeningRules()) -> ScreeningResult:
    reasons: list[Reason] = []

    if facts.ketamine_hypersensitivity:
        reasons.append(Reason("ketamine_hypersensitivity", ABSOLUTE, "known hypersensitivity to ketamine"))
    if facts.pregnant:
        reasons.append(Reason("pregnancy", ABSOLUTE, "pregnancy"))
    for code, message in ABSOLUTE_CONDITIONS.items():
        if code in facts.conditions:
            reasons.append(Reason(code, ABSOLUTE, message))
    if facts.systolic >= rules.max_systolic or facts.diastolic >= rules.max_diastolic:
        reasons.append(Reason(
            "uncontrolled_hypertension", ABSOLUTE,
            f"screening blood pressure {facts.systolic}/{facts.diastolic} mmHg is at or above "
            f"{rules.max_systolic}/{rules.max_diastolic}",
        ))
    if facts.last_myocardial_infarction is not None:
        since = facts.on_date - facts.last_myocardial_infarction
        if since < timedelta(weeks=rules.recent_mi_weeks):
            reasons.append(Reason(
                "recent_myocardial_infarction", ABSOLUTE,
                f"myocardial infarction within the last {rules.recent_mi_weeks} weeks",
            ))
        else:
            reasons.append(Reason(
                "past_myocardial_infarction", RELATIVE, "history of myocardial infarction",
            ))

    for code, message in RELATIVE_CONDITIONS.items():
        if code in facts.conditions:
            reasons.append(Reason(code, RELATIVE, message))
    bmi = body_mass_index(facts.weight_kg, facts.height_cm)
    if bmi is not None and bmi > rules.bmi_airway_limit:
        reasons.append(Reason("bmi_airway", RELATIVE, f"BMI {bmi} is over {rules.bmi_airway_limit:g} (airway risk)"))

    medications = {name.strip().lower() for name in facts.medications}
    if medications & MAO_INHIBITORS:
        reasons.append(Reason(
            "mao_inhibitor", RELATIVE,
            "MAO inhibitor: " + ", ".join(sorted(medications & MAO_INHIBITORS)),
        ))
    if medications & BENZODIAZEPINES:
        reasons.append(Reason(
            "benzodiazepine", NOTE,
            "benzodiazepine may reduce ketamine's effect: " + ", ".join(sorted(medications & BENZODIAZEPINES)),
        ))
    if medications & LAMOTRIGINE:
        reasons.append(Reason("lamotrigine", NOTE, "lamotrigine may reduce ketamine's effect"))

    severities = {reason.severity for reason in reasons}
    if ABSOLUTE in severities:
        outcome = ScreeningOutcome.INELIGIBLE
    elif RELATIVE in severities:
        outcome = ScreeningOutcome.NEEDS_REVIEW
    else:
        outcome = ScreeningOutcome.ELIGIBLE
    return ScreeningResult(outcome, tuple(reasons))


# --------------------------------------------------------------------------
# The intake state machine
# --------------------------------------------------------------------------


class IntakeStatus(str, Enum):
    REGISTERED = "registered"   # patient on file, intake not yet complete
    SUBMITTED = "submitted"     # consent, history and questionnaires in
    SCREENED = "screened"       # contraindication screening done
    APPROVED = "approved"       # clinician approved at the initial consultation
    DECLINED = "declined"       # clinician declined


REQUIRED_QUESTIONNAIRES = ("phq9", "gad7")


def check_can_submit(
    status: IntakeStatus, *, treatment_consent: bool, has_history: bool, questionnaires: set[str]
) -> None:
    if status is not IntakeStatus.REGISTERED:
        raise Conflict(f"intake is already {status.value}; it can be submitted only once")
    missing = []
    if not treatment_consent:
        missing.append({"field": "consents.treatment", "message": "treatment consent has not been given"})
    if not has_history:
        missing.append({"field": "medical_history", "message": "medical history has not been recorded"})
    for code in REQUIRED_QUESTIONNAIRES:
        if code not in questionnaires:
            missing.append({"field": f"questionnaires.{code}", "message": f"{INSTRUMENTS[code].title} not completed"})
    if missing:
        raise Conflict("intake is incomplete: " + "; ".join(m["message"] for m in missing), missing)


def check_can_screen(status: IntakeStatus) -> None:
    if status not in (IntakeStatus.SUBMITTED, IntakeStatus.SCREENED):
        raise Conflict(f"intake is {status.value}; only a submitted intake can be screened")


def check_can_approve(
    status: IntakeStatus, outcome: ScreeningOutcome | None, *, relative_contraindications_reviewed: bool,
    treatment_consent: bool,
) -> None:
    if status is not IntakeStatus.SCREENED or outcome is None:
        raise Conflict(f"intake is {status.value}; only a screened intake can be approved")
    if outcome is ScreeningOutcome.INELIGIBLE:
        raise Conflict("screening found an absolute contraindication; the intake cannot be approved")
    if outcome is ScreeningOutcome.NEEDS_REVIEW and not relative_contraindications_reviewed:
        raise Conflict(
            "screening found relative contraindications; confirm they were reviewed "
            "(relative_contraindications_reviewed: true) to approve",
            [{"field": "relative_contraindications_reviewed", "message": "must be true for needs_review"}],
        )
    if not treatment_consent:
        raise Conflict("treatment consent has been withdrawn; the intake cannot be approved")


def check_can_decline(status: IntakeStatus) -> None:
    if status not in (IntakeStatus.SUBMITTED, IntakeStatus.SCREENED):
        raise Conflict(f"intake is {status.value}; only a submitted or screened intake can be declined")


# --------------------------------------------------------------------------
# Self-report by secure link
# --------------------------------------------------------------------------

# What a patient may be sent to fill in alone. PCL-5 stays with staff. A
# C-SSRS "yes" by link pages the on-duty staff at once (patient.risk_flagged),
# as does a "yes" to the check-in's self-harm question (services.intake.check_in).
SELF_REPORT_QUESTIONNAIRES = ("phq9", "gad7", "cssrs", "check_in")
SELF_REPORT_CHANNELS = ("any", "email", "sms")
# A rise of this many points on the same instrument since its previous score
# pages staff like a risk item does.
SCORE_RISE_ALERT_POINTS = 5
SCORE_RISE_FLAG = "score_rise"
# The rise rule is for the symptom scales; a screener's "yes" flags by itself.
SCORE_RISE_INSTRUMENTS = ("phq9", "gad7")


def check_self_report_request(questionnaire, channel) -> None:
    errors = []
    if questionnaire not in SELF_REPORT_QUESTIONNAIRES:
        errors.append({"field": "questionnaire",
                       "message": f"expected one of {', '.join(SELF_REPORT_QUESTIONNAIRES)}"})
    if channel not in SELF_REPORT_CHANNELS:
        errors.append({"field": "channel", "message": f"expected one of {', '.join(SELF_REPORT_CHANNELS)}"})
    if errors:
        raise ValidationFailed("self-report request not sent: " + "; ".join(e["message"] for e in errors), errors)


def self_report_state(expires_at, used_at, now) -> str:
    """``open``, ``used`` (answered once already) or ``expired``."""
    if used_at is not None:
        return "used"
    if now >= expires_at:
        return "expired"
    return "open"


def risk_flags_with_rise(score: QuestionnaireScore, previous_total: int | None) -> tuple[str, ...]:
    """The score's own risk flags, plus ``score_rise`` when the total rose
    by SCORE_RISE_ALERT_POINTS or more since the previous score of the same
    instrument."""
    flags = tuple(score.risk_flags)
    rose = previous_total is not None and score.total - previous_total >= SCORE_RISE_ALERT_POINTS
    if rose and score.instrument in SCORE_RISE_INSTRUMENTS:
        flags += (SCORE_RISE_FLAG,)
    return flags

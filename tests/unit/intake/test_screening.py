from datetime import date, timedelta

import pytest

from common.errors import Conflict
from services.intake import domain
from services.intake.domain import (
    IntakeStatus, ScreeningFacts, ScreeningOutcome, ScreeningRules, screen_contraindications,
)

TODAY = date(2026, 11, 25)


def facts(**overrides):
    base = dict(on_date=TODAY, systolic=120, diastolic=80)
    base.update(overrides)
    return ScreeningFacts(**base)


@pytest.mark.parametrize("overrides, outcome, code", [
    ({}, ScreeningOutcome.ELIGIBLE, None),
    ({"ketamine_hypersensitivity": True}, ScreeningOutcome.INELIGIBLE, "ketamine_hypersensitivity"),
    ({"pregnant": True}, ScreeningOutcome.INELIGIBLE, "pregnancy"),
    ({"conditions": frozenset({"active_psychosis"})}, ScreeningOutcome.INELIGIBLE, "active_psychosis"),
    ({"conditions": frozenset({"schizophrenia"})}, ScreeningOutcome.INELIGIBLE, "schizophrenia"),
    ({"conditions": frozenset({"aneurysmal_vascular_disease"})}, ScreeningOutcome.INELIGIBLE,
     "aneurysmal_vascular_disease"),
    ({"conditions": frozenset({"intracranial_haemorrhage"})}, ScreeningOutcome.INELIGIBLE,
     "intracranial_haemorrhage"),
    # Blood pressure: at or above 160/100 is absolute.
    ({"systolic": 159, "diastolic": 99}, ScreeningOutcome.ELIGIBLE, None),
    ({"systolic": 160, "diastolic": 80}, ScreeningOutcome.INELIGIBLE, "uncontrolled_hypertension"),
    ({"systolic": 130, "diastolic": 100}, ScreeningOutcome.INELIGIBLE, "uncontrolled_hypertension"),
    # Myocardial infarction: within six weeks absolute, earlier relative.
    ({"last_myocardial_infarction": TODAY - timedelta(weeks=6) + timedelta(days=1)},
     ScreeningOutcome.INELIGIBLE, "recent_myocardial_infarction"),
    ({"last_myocardial_infarction": TODAY - timedelta(weeks=6)},
     ScreeningOutcome.NEEDS_REVIEW, "past_myocardial_infarction"),
    ({"conditions": frozenset({"substance_use_disorder"})}, ScreeningOutcome.NEEDS_REVIEW, "substance_use_disorder"),
    ({"conditions": frozenset({"bipolar_disorder"})}, ScreeningOutcome.NEEDS_REVIEW, "bipolar_disorder"),
    ({"conditions": frozenset({"stable_cardiovascular_disease"})}, ScreeningOutcome.NEEDS_REVIEW,
     "stable_cardiovascular_disease"),
    ({"conditions": frozenset({"liver_disease"})}, ScreeningOutcome.NEEDS_REVIEW, "liver_disease"),
    ({"conditions": frozenset({"elevated_intracranial_pressure"})}, ScreeningOutcome.NEEDS_REVIEW,
     "elevated_intracranial_pressure"),
    ({"conditions": frozenset({"elevated_intraocular_pressure"})}, ScreeningOutcome.NEEDS_REVIEW,
     "elevated_intraocular_pressure"),
    # BMI over 35 (not at 35) needs review: 100 kg at 169 cm is 35.0, at 168 cm 35.4.
    ({"weight_kg": 100, "height_cm": 169}, ScreeningOutcome.ELIGIBLE, None),
    ({"weight_kg": 100, "height_cm": 168}, ScreeningOutcome.NEEDS_REVIEW, "bmi_airway"),
    ({"medications": ("Phenelzine",)}, ScreeningOutcome.NEEDS_REVIEW, "mao_inhibitor"),
    ({"medications": ("lorazepam",)}, ScreeningOutcome.ELIGIBLE, "benzodiazepine"),
    ({"medications": ("lamotrigine",)}, ScreeningOutcome.ELIGIBLE, "lamotrigine"),
])
def test_default_rules(overrides, outcome, code):
    result = screen_contraindications(facts(**overrides))
    assert result.outcome is outcome
    if code:
        assert code in {reason.code for reason in result.reasons}
    else:
        assert result.reasons == ()


def test_every_reason_is_given_not_only_the_worst():
    result = screen_contraindications(facts(pregnant=True, systolic=170,
                                            conditions=frozenset({"liver_disease"}), medications=("diazepam",)))
    assert result.outcome is ScreeningOutcome.INELIGIBLE
    assert {r.code for r in result.reasons} == {"pregnancy", "uncontrolled_hypertension", "liver_disease",
                                                "benzodiazepine"}
    assert all(r.message for r in result.reasons)


def test_thresholds_come_from_configuration():
    rules = ScreeningRules.from_config({"HYPERTENSION_SYSTOLIC": 150, "BMI_AIRWAY_LIMIT": 40})
    assert screen_contraindications(facts(systolic=150), rules).outcome is ScreeningOutcome.INELIGIBLE
    assert screen_contraindications(facts(weight_kg=100, height_cm=168), rules).outcome is ScreeningOutcome.ELIGIBLE


COMPLETE = dict(treatment_consent=True, has_history=True, questionnaires={"phq9", "gad7"})


def test_a_complete_intake_can_be_submitted_once():
    domain.check_can_submit(IntakeStatus.REGISTERED, **COMPLETE)
    with pytest.raises(Conflict):
        domain.check_can_submit(IntakeStatus.SUBMITTED, **COMPLETE)


@pytest.mark.parametrize("missing, field", [
    ({"treatment_consent": False}, "consents.treatment"),
    ({"has_history": False}, "medical_history"),
    ({"questionnaires": {"phq9"}}, "questionnaires.gad7"),
])
def test_an_incomplete_intake_names_what_is_missing(missing, field):
    with pytest.raises(Conflict) as caught:
        domain.check_can_submit(IntakeStatus.REGISTERED, **{**COMPLETE, **missing})
    assert field in {d["field"] for d in caught.value.details}


@pytest.mark.parametrize("status, outcome, reviewed, consent, allowed", [
    (IntakeStatus.SCREENED, ScreeningOutcome.ELIGIBLE, False, True, True),
    (IntakeStatus.SCREENED, ScreeningOutcome.NEEDS_REVIEW, True, True, True),
    (IntakeStatus.SCREENED, ScreeningOutcome.NEEDS_REVIEW, False, True, False),
    (IntakeStatus.SCREENED, ScreeningOutcome.INELIGIBLE, True, True, False),
    (IntakeStatus.SCREENED, ScreeningOutcome.ELIGIBLE, False, False, False),
    (IntakeStatus.REGISTERED, None, False, True, False),
    (IntakeStatus.SUBMITTED, None, False, True, False),
    (IntakeStatus.DECLINED, ScreeningOutcome.ELIGIBLE, False, True, False),
    (IntakeStatus.APPROVED, ScreeningOutcome.ELIGIBLE, False, True, False),
])
def test_approval_state_machine(status, outcome, reviewed, consent, allowed):
    def approve():
        domain.check_can_approve(status, outcome, relative_contraindications_reviewed=reviewed,
                                 treatment_consent=consent)
    if allowed:
        approve()
    else:
        with pytest.raises(Conflict):
            approve()


@pytest.mark.parametrize("status, allowed", [
    (IntakeStatus.REGISTERED, False), (IntakeStatus.SUBMITTED, True), (IntakeStatus.SCREENED, True),
    (IntakeStatus.APPROVED, False), (IntakeStatus.DECLINED, False),
])
def test_decline_state_machine(status, allowed):
    if allowed:
        domain.check_can_decline(status)
    else:
        with pytest.raises(Conflict):
            domain.check_can_decline(status)

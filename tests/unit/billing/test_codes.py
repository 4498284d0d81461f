"""Which codes a completed session is billed as, at every edge."""
import pytest

from common.errors import ValidationFailed
from services.billing.domain import (
    BillingRules, ChargeLine, CompletedSession, additional_infusion_hours, ketamine_units, session_lines,
)

RULES = BillingRules()


def iv(minutes, dose=35.0):
    return session_lines(CompletedSession("iv_infusion", "ketamine", dose, minutes), RULES)


@pytest.mark.parametrize("minutes, extra_hours", [
    (0, 0), (40, 0), (60, 0), (90, 0),
    (91, 1), (120, 1), (150, 1),
    (151, 2), (180, 2), (210, 2),
    (211, 3), (270, 3), (271, 4),
])
def test_additional_hours_count_once_past_thirty_minutes_over_the_hour(minutes, extra_hours):
    assert additional_infusion_hours(minutes) == extra_hours


@pytest.mark.parametrize("minutes, procedure", [
    (0, [ChargeLine("96374")]),
    (15, [ChargeLine("96374")]),
    (16, [ChargeLine("96365")]),
    (40, [ChargeLine("96365")]),
    (90, [ChargeLine("96365")]),
    (91, [ChargeLine("96365"), ChargeLine("96366", 1)]),
    (150, [ChargeLine("96365"), ChargeLine("96366", 1)]),
    (151, [ChargeLine("96365"), ChargeLine("96366", 2)]),
    (210, [ChargeLine("96365"), ChargeLine("96366", 2)]),
    (211, [ChargeLine("96365"), ChargeLine("96366", 3)]),
])
def test_iv_infusion_codes_by_duration_plus_the_drug(minutes, procedure):
    assert iv(minutes) == procedure + [ChargeLine("J3490", 35)]


def test_a_short_infusion_bills_only_the_drug_when_the_clinic_sets_no_push_code():
    rules = BillingRules(short_infusion_code="")
    lines = session_lines(CompletedSession("iv_infusion", "ketamine", 20, 10), rules)
    assert lines == [ChargeLine("J3490", 20)]


@pytest.mark.parametrize("dose, units", [(0.1, 1), (1.0, 1), (34.5, 35), (35.0, 35), (35.04, 35), (70.2, 71)])
def test_ketamine_is_billed_per_whole_mg_rounded_up(dose, units):
    assert ketamine_units(dose, RULES) == units


@pytest.mark.parametrize("dose, vials", [(1, 1), (499.9, 1), (500, 1), (500.5, 2), (1000, 2)])
def test_ketamine_can_be_billed_per_vial(dose, vials):
    assert ketamine_units(dose, BillingRules(ketamine_unit="vial", ketamine_vial_mg=500)) == vials


def test_im_injection_is_96372_plus_the_drug():
    lines = session_lines(CompletedSession("im_injection", "ketamine", 50, 60), RULES)
    assert lines == [ChargeLine("96372"), ChargeLine("J3490", 50)]


@pytest.mark.parametrize("dose, code", [(28, "G2082"), (56, "G2082"), (56.1, "G2083"), (84, "G2083")])
def test_esketamine_code_by_dose_and_no_separate_drug_line(dose, code):
    lines = session_lines(CompletedSession("intranasal_esketamine", "esketamine", dose, 120), RULES)
    assert lines == [ChargeLine(code)]


def test_oral_session_bills_the_oral_drug_code():
    assert session_lines(CompletedSession("oral_sublingual", "ketamine", 150, 90), RULES) == [ChargeLine("J8499")]


@pytest.mark.parametrize("session, field", [
    (CompletedSession("iv_drip", "ketamine", 35, 40), "route"),
    (CompletedSession("iv_infusion", "ketamine", None, 40), "dose_mg"),
    (CompletedSession("iv_infusion", "ketamine", 0, 40), "dose_mg"),
    (CompletedSession("intranasal_esketamine", "esketamine", None, 120), "dose_mg"),
    (CompletedSession("iv_infusion", "ketamine", 35, -1), "duration_minutes"),
])
def test_impossible_session_facts_are_named(session, field):
    with pytest.raises(ValidationFailed) as caught:
        session_lines(session, RULES)
    assert caught.value.details[0]["field"] == field


def test_rules_from_config_and_refusal_of_unknown_units():
    rules = BillingRules.from_config({"CURRENCY": "cad", "KETAMINE_UNIT": "vial", "SHORT_INFUSION_CODE": None})
    assert (rules.currency, rules.ketamine_unit, rules.short_infusion_code) == ("CAD", "vial", "")
    with pytest.raises(ValueError):
        BillingRules.from_config({"KETAMINE_UNIT": "ml"})

from decimal import Decimal

import pytest

from common.errors import ValidationFailed
from services.sessions.domain import check_plan_dosing, compute_dose_mg, round_dose


@pytest.mark.parametrize("weight, mg_per_kg, maximum, dose", [
    (70, 0.5, 75, 35.0),
    (70.5, 0.5, 75, 35.2),      # 35.25 mg: charted as 35.2, never above the prescription
    (62.5, 0.5, 75, 31.2),      # 31.25 mg: not 31.3
    (150, 0.5, 75, 75.0),       # exactly the maximum is allowed
    (150.1, 0.5, 75, 75.0),     # 75.05 mg rounds down to the maximum, not above it
    (83.3, 0.75, 75, 62.4),     # 62.475 → 62.4
    (70, 0.3, 75, 21.0),        # worked out in decimal: not 20.9 from 20.999… in binary
    (45, 1.0, 300, 45.0),
])
def test_weight_based_dose(weight, mg_per_kg, maximum, dose):
    assert compute_dose_mg(weight_kg=weight, mg_per_kg=mg_per_kg, fixed_dose_mg=None, max_dose_mg=maximum) == dose


@pytest.mark.parametrize("weight, mg_per_kg, maximum", [
    (150.2, 0.5, 75),   # 75.1 mg: one tenth over
    (120, 1.0, 100),
])
def test_a_dose_above_the_plan_maximum_is_refused(weight, mg_per_kg, maximum):
    with pytest.raises(ValidationFailed) as caught:
        compute_dose_mg(weight_kg=weight, mg_per_kg=mg_per_kg, fixed_dose_mg=None, max_dose_mg=maximum)
    assert caught.value.details[0]["field"] == "dose_mg"
    assert "maximum" in caught.value.message


@pytest.mark.parametrize("requested, expected, error", [
    (35.0, 35.0, None),      # the computed dose itself
    (30.0, 30.0, None),      # titrated down
    (35.04, 35.0, None),     # rounds to the computed dose
    (35.1, None, "dose_mg"),  # above what the plan gives for this weight
    (0, None, "dose_mg"),
])
def test_a_clinician_may_give_less_never_more(requested, expected, error):
    if error:
        with pytest.raises(ValidationFailed) as caught:
            compute_dose_mg(weight_kg=70, mg_per_kg=0.5, fixed_dose_mg=None, max_dose_mg=75, requested_mg=requested)
        assert caught.value.details[0]["field"] == error
    else:
        assert compute_dose_mg(weight_kg=70, mg_per_kg=0.5, fixed_dose_mg=None, max_dose_mg=75,
                               requested_mg=requested) == expected


@pytest.mark.parametrize("weight", [None, 0])
def test_weight_is_needed_for_a_weight_based_dose(weight):
    with pytest.raises(ValidationFailed) as caught:
        compute_dose_mg(weight_kg=weight, mg_per_kg=0.5, fixed_dose_mg=None, max_dose_mg=75)
    assert caught.value.details[0]["field"] == "weight_kg"


@pytest.mark.parametrize("fixed, maximum, ok", [(56, 84, True), (84, 84, True), (84, 56, False)])
def test_fixed_esketamine_dose_ignores_weight_but_not_the_maximum(fixed, maximum, ok):
    if ok:
        assert compute_dose_mg(weight_kg=None, mg_per_kg=None, fixed_dose_mg=fixed, max_dose_mg=maximum) == fixed
    else:
        with pytest.raises(ValidationFailed):
            compute_dose_mg(weight_kg=None, mg_per_kg=None, fixed_dose_mg=fixed, max_dose_mg=maximum)


@pytest.mark.parametrize("mg, rounded", [(35.25, 35.2), (35.24, 35.2), (35.29, 35.2), (0.05, 0.0),
                                         (62.475, 62.4), (31.25, 31.2), (35.0, 35.0), (21.0, 21.0)])
def test_rounding_is_down_to_one_decimal(mg, rounded):
    assert round_dose(mg) == rounded


@pytest.mark.parametrize("weight", [40, 50.5, 62.5, 70.3, 83.3, 99.9, 133.7])
@pytest.mark.parametrize("mg_per_kg", [0.3, 0.5, 0.75, 1.0, 1.15])
def test_the_charted_dose_is_never_above_weight_times_mg_per_kg(weight, mg_per_kg):
    dose = compute_dose_mg(weight_kg=weight, mg_per_kg=mg_per_kg, fixed_dose_mg=None, max_dose_mg=1000)
    exact = Decimal(str(weight)) * Decimal(str(mg_per_kg))
    assert Decimal(str(dose)) <= exact < Decimal(str(dose)) + Decimal("0.1")


@pytest.mark.parametrize("weight, mg_per_kg, max_mg_per_kg, requested, outcome", [
    (80, 0.5, 0.5, None, 40.0),        # the protocol itself is within the per-kg maximum
    (80, 0.75, 0.5, None, "mg/kg"),    # 60 mg is above 0.5 mg/kg × 80 kg = 40 mg
    (80, 0.75, 0.5, 40, 40.0),         # titrated down to the per-kg maximum
    (62.5, 0.5, 0.5, None, 31.2),      # the ceiling is rounded down as well: 31.25 → 31.2
    (None, 0.5, 0.5, None, "weight_kg"),
])
def test_a_plan_may_cap_the_dose_per_kg(weight, mg_per_kg, max_mg_per_kg, requested, outcome):
    dose = dict(weight_kg=weight, mg_per_kg=mg_per_kg, fixed_dose_mg=None, max_dose_mg=300,
                max_mg_per_kg=max_mg_per_kg, requested_mg=requested)
    if isinstance(outcome, float):
        assert compute_dose_mg(**dose) == outcome
    else:
        with pytest.raises(ValidationFailed) as caught:
            compute_dose_mg(**dose)
        assert outcome in caught.value.message or caught.value.details[0]["field"] == outcome


@pytest.mark.parametrize("mg_per_kg, max_mg_per_kg, field", [
    (0.5, 0.75, None), (0.5, 0.5, None), (0.75, 0.5, "max_mg_per_kg"),
])
def test_the_per_kg_maximum_is_at_least_the_protocol(mg_per_kg, max_mg_per_kg, field):
    if field is None:
        check_plan_dosing("iv_infusion", mg_per_kg, None, 75, max_mg_per_kg)
    else:
        with pytest.raises(ValidationFailed) as caught:
            check_plan_dosing("iv_infusion", mg_per_kg, None, 75, max_mg_per_kg)
        assert caught.value.details[0]["field"] == field


def test_esketamine_has_no_per_kg_maximum():
    with pytest.raises(ValidationFailed) as caught:
        check_plan_dosing("intranasal_esketamine", None, 56, 84, 1.0)
    assert caught.value.details[0]["field"] == "max_mg_per_kg"


@pytest.mark.parametrize("route, mg_per_kg, fixed, maximum, field", [
    ("iv_infusion", 0.5, None, 75, None),
    ("iv_infusion", None, None, 75, "mg_per_kg"),
    ("iv_infusion", 0.5, 56, 75, "fixed_dose_mg"),
    ("intranasal_esketamine", None, 56, 84, None),
    ("intranasal_esketamine", None, 84, 84, None),
    ("intranasal_esketamine", None, 28, 84, "fixed_dose_mg"),
    ("intranasal_esketamine", None, None, 84, "fixed_dose_mg"),
    ("intranasal_esketamine", 0.5, 56, 84, "mg_per_kg"),
    ("intranasal_esketamine", None, 84, 56, "max_dose_mg"),
    ("subcutaneous", 0.5, None, 75, "route"),
])
def test_plan_dosing_fits_the_route(route, mg_per_kg, fixed, maximum, field):
    if field is None:
        check_plan_dosing(route, mg_per_kg, fixed, maximum)
    else:
        with pytest.raises(ValidationFailed) as caught:
            check_plan_dosing(route, mg_per_kg, fixed, maximum)
        assert caught.value.details[0]["field"] == field


@pytest.mark.parametrize("requested, ok", [(56, True), (84, False), (70, False), (28, False)])
def test_esketamine_given_only_in_device_doses_up_to_the_plan(requested, ok):
    dose = dict(weight_kg=None, mg_per_kg=None, fixed_dose_mg=56, max_dose_mg=84, requested_mg=requested,
                device_doses_mg=(56.0, 84.0))
    if ok:
        assert compute_dose_mg(**dose) == requested
    else:
        with pytest.raises(ValidationFailed):
            compute_dose_mg(**dose)

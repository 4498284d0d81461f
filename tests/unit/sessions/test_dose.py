import pytest

from common.errors import ValidationFailed
from services.sessions.domain import check_plan_dosing, compute_dose_mg, round_dose


@pytest.mark.parametrize("weight, mg_per_kg, maximum, dose", [
    (70, 0.5, 75, 35.0),
    (70.5, 0.5, 75, 35.3),      # 35.25 rounds half up
    (150, 0.5, 75, 75.0),       # exactly the maximum is allowed
    (83.3, 0.75, 75, 62.5),     # 62.475 → 62.5
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


@pytest.mark.parametrize("mg, rounded", [(35.25, 35.3), (35.24, 35.2), (0.05, 0.1), (62.475, 62.5)])
def test_rounding_is_half_up_to_one_decimal(mg, rounded):
    assert round_dose(mg) == rounded


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

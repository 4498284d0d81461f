"""Scoring the forms a patient answers by link beyond PHQ-9 and GAD-7: the
C-SSRS screener (intake's own scoring, as for staff entry) and the
post-session check-in."""
import pytest

from common.errors import ValidationFailed
from services.intake.check_in import CHECK_IN_SELF_HARM_FLAG, score_check_in, score_self_report


def test_a_settled_check_in_raises_nothing():
    score = score_check_in([0, 1, 1, 0, 0])
    assert (score.instrument, score.total, score.band, score.risk_flags) == ("check_in", 2, "settled", ())


@pytest.mark.parametrize("answers", [[0, 2, 0, 0, 0], [0, 0, 2, 0, 0], [0, 0, 0, 2, 0], [2, 0, 0, 0, 0]])
def test_a_lasting_side_effect_or_feeling_worse_asks_for_follow_up(answers):
    score = score_check_in(answers)
    assert score.band == "follow_up" and score.risk_flags == ()


def test_a_yes_to_self_harm_is_urgent_and_flagged_whatever_the_rest():
    score = score_check_in([0, 0, 0, 0, 1])
    assert score.band == "urgent" and score.risk_flags == (CHECK_IN_SELF_HARM_FLAG,)
    assert score.total == 0, "the total counts how unsettled the patient is, not the risk question"


@pytest.mark.parametrize("answers, field", [
    ([0, 0, 0, 0], "answers.item5"), ([0, 0, 0, 0, 2], "answers.item5"), ([3, 0, 0, 0, 0], "answers.item1"),
    ([0, 0, 0, 0, 0, 0], "answers"),
])
def test_a_check_in_with_a_missing_or_out_of_range_item_is_not_scored(answers, field):
    with pytest.raises(ValidationFailed) as caught:
        score_check_in(answers)
    assert field in [e["field"] for e in caught.value.details]


@pytest.mark.parametrize("answers, band", [
    ([0, 0, 0, 0, 0, 0], "negative"), ([1, 0, 0, 0, 0, 0], "low_risk"), ([0, 1, 1, 0, 0, 0], "moderate_risk"),
    ([0, 0, 0, 0, 0, 1], "high_risk"),
])
def test_a_cssrs_by_link_is_scored_as_staff_entry_and_any_yes_flags(answers, band):
    score = score_self_report("cssrs", answers)
    assert score.band == band
    assert score.risk_flags == (() if band == "negative" else ("cssrs_positive",))


def test_phq9_by_link_keeps_its_rules():
    assert score_self_report("phq9", [0] * 8 + [1]).risk_flags == ("phq9_self_harm_thoughts",)

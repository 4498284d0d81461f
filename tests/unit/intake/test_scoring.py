import pytest

from common.errors import ValidationFailed
from services.intake.domain import score_questionnaire


def answers_totalling(total, items, top):
    answers = []
    for _ in range(items):
        take = min(top, total)
        answers.append(take)
        total -= take
    assert total == 0
    return answers


@pytest.mark.parametrize("total, band", [
    (0, "minimal"), (4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"), (14, "moderate"),
    (15, "moderately_severe"), (19, "moderately_severe"), (20, "severe"), (24, "severe"),
])
def test_phq9_bands_at_every_edge(total, band):
    # Item 9 is kept at zero by filling from the first item.
    answers = answers_totalling(total, 9, 3)
    assert answers[8] == 0
    assert score_questionnaire("phq9", answers).band == band


def test_phq9_maximum_is_severe_and_flags_self_harm():
    score = score_questionnaire("phq9", [3] * 9)
    assert (score.total, score.band, score.risk_flags) == (27, "severe", ("phq9_self_harm_thoughts",))


@pytest.mark.parametrize("item9, flagged", [(0, False), (1, True), (2, True), (3, True)])
def test_phq9_item9_above_zero_flags_whatever_the_total(item9, flagged):
    score = score_questionnaire("phq9", [0] * 8 + [item9])
    assert bool(score.risk_flags) is flagged
    assert score.band == "minimal"


@pytest.mark.parametrize("total, band", [
    (0, "minimal"), (4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"), (14, "moderate"),
    (15, "severe"), (21, "severe"),
])
def test_gad7_bands_at_every_edge(total, band):
    assert score_questionnaire("gad7", answers_totalling(total, 7, 3)).band == band


@pytest.mark.parametrize("total, cutoff, band", [
    (0, 33, "below_cutoff"), (32, 33, "below_cutoff"), (33, 33, "probable_ptsd"), (80, 33, "probable_ptsd"),
    (31, 31, "probable_ptsd"), (30, 31, "below_cutoff"),
])
def test_pcl5_cutoff_is_configurable(total, cutoff, band):
    assert score_questionnaire("pcl5", answers_totalling(total, 20, 4), pcl5_cutoff=cutoff).band == band


@pytest.mark.parametrize("answers, band, flagged", [
    ([0, 0, 0, 0, 0, 0], "negative", False),
    ([1, 0, 0, 0, 0, 0], "low_risk", True),
    ([0, 1, 0, 0, 0, 0], "low_risk", True),
    ([1, 1, 1, 0, 0, 0], "moderate_risk", True),
    ([1, 1, 1, 1, 0, 0], "high_risk", True),
    ([0, 0, 0, 0, 1, 0], "high_risk", True),
    ([0, 0, 0, 0, 0, 1], "high_risk", True),
])
def test_cssrs_screener(answers, band, flagged):
    score = score_questionnaire("cssrs", answers)
    assert score.band == band
    assert bool(score.risk_flags) is flagged


@pytest.mark.parametrize("instrument, answers, field, words", [
    ("phq9", [0] * 8, "answers.item9", "item 9 is missing"),
    ("phq9", [0] * 4 + [None] + [0] * 4, "answers.item5", "item 5 is missing"),
    ("phq9", [0] * 8 + [4], "answers.item9", "outside 0–3"),
    ("phq9", [-1] + [0] * 8, "answers.item1", "outside 0–3"),
    ("gad7", [0] * 6 + ["2"], "answers.item7", "whole number"),
    ("gad7", [0] * 6 + [True], "answers.item7", "whole number"),
    ("pcl5", [0] * 19 + [5], "answers.item20", "outside 0–4"),
    ("phq9", [0] * 10, "answers", "has 9 items"),
    ("cssrs", [0, 0, 2, 0, 0, 0], "answers.item3", "outside 0–1"),
])
def test_bad_answers_are_rejected_naming_the_item(instrument, answers, field, words):
    with pytest.raises(ValidationFailed) as caught:
        score_questionnaire(instrument, answers)
    fields = {e["field"]: e["message"] for e in caught.value.details}
    assert field in fields
    assert words in fields[field]


def test_unknown_instrument_is_rejected():
    with pytest.raises(ValidationFailed):
        score_questionnaire("beck", [0])

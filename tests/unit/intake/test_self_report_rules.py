"""Self-report rules without a broker: the link token, a request's state,
what may be sent, and the rise-of-5 flag."""
from datetime import datetime, timedelta, timezone

import pytest

from common import self_report_links as links
from common.errors import ValidationFailed
from services.intake import domain

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone.utc)


def test_a_token_is_the_same_for_one_request_and_secret_and_differs_otherwise():
    token = links.token_for("secret", "req-1")
    assert token == links.token_for("secret", "req-1")
    assert token != links.token_for("secret", "req-2")
    assert token != links.token_for("other secret", "req-1")
    assert links.well_formed(token) and len(token) == 43


def test_a_token_carries_nothing_of_the_request_and_intake_keeps_only_its_hash():
    token = links.token_for("secret", "3f2a7c1e-0000-4000-8000-000000000001")
    assert "3f2a7c1e" not in token
    stored = links.token_hash(token)
    assert stored != token and len(stored) == 64


@pytest.mark.parametrize("token", [None, "", "short", "a" * 44, "a" * 42 + "/", 12345, "../" * 15])
def test_malformed_tokens_are_refused_before_any_lookup(token):
    assert not links.well_formed(token)


def test_the_link_names_only_the_token():
    token = links.token_for("secret", "req-1")
    assert links.link("https://forms.example.org/", token) == f"https://forms.example.org/f/{token}"


def test_settings_default_to_72_hours_and_988():
    settings = links.settings({})
    assert settings["valid_hours"] == 72
    assert "988" in settings["crisis_text"]


def test_a_request_is_open_until_it_expires_or_is_used():
    expires = NOW + timedelta(hours=72)
    assert domain.self_report_state(expires, None, NOW) == "open"
    assert domain.self_report_state(expires, None, expires) == "expired"
    assert domain.self_report_state(expires, NOW, NOW) == "used"
    assert domain.self_report_state(NOW - timedelta(seconds=1), NOW, NOW) == "used"


@pytest.mark.parametrize("questionnaire, channel, field", [
    ("pcl5", "email", "questionnaire"), ("mood", "any", "questionnaire"), ("phq9", "fax", "channel"),
])
def test_only_the_self_report_forms_by_email_or_sms_may_be_sent(questionnaire, channel, field):
    with pytest.raises(ValidationFailed) as caught:
        domain.check_self_report_request(questionnaire, channel)
    assert [e["field"] for e in caught.value.details] == [field]
    domain.check_self_report_request("gad7", "sms")


def test_a_rise_of_five_points_raises_the_flag_and_four_does_not():
    score = domain.score_questionnaire("phq9", [2, 2, 2, 1, 1, 1, 1, 1, 0])  # 11
    assert domain.risk_flags_with_rise(score, 6) == ("score_rise",)
    assert domain.risk_flags_with_rise(score, 7) == ()
    assert domain.risk_flags_with_rise(score, None) == ()
    assert domain.risk_flags_with_rise(score, 20) == ()


def test_the_rise_adds_to_the_scores_own_flags():
    score = domain.score_questionnaire("phq9", [3, 3, 3, 3, 3, 3, 3, 3, 1])
    assert domain.risk_flags_with_rise(score, 0) == ("phq9_self_harm_thoughts", "score_rise")


def test_cssrs_and_the_check_in_may_now_be_sent_by_link_but_pcl5_may_not():
    for questionnaire in ("cssrs", "check_in"):
        domain.check_self_report_request(questionnaire, "any")
    with pytest.raises(ValidationFailed):
        domain.check_self_report_request("pcl5", "any")


def test_the_rise_rule_is_for_the_symptom_scales_only():
    from services.intake.check_in import score_check_in
    check_in = score_check_in([2, 2, 2, 2, 0])  # 8, from 0 last time
    assert domain.risk_flags_with_rise(check_in, 0) == ()
    gad7 = domain.score_questionnaire("gad7", [1, 1, 1, 1, 1, 0, 0])
    assert domain.risk_flags_with_rise(gad7, 0) == ("score_rise",)

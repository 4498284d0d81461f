"""What a patient's lock screen shows: with the configuration as shipped
(config.yaml, no environment overrides), no SMS, email subject or email
sender names a drug, condition, score or dose; the clinic's legal name for
billing is a separate setting that never reaches a patient message."""
import logging

import pytest

from common.config import load_config
from services.notifications.channels import ChannelSettings, Sender
from services.notifications.domain import PATIENT_KINDS, Channel, Kind, treatment_words_in
from services.notifications.rendering import available_templates, render, template_facts
from services.notifications.dependencies import Settings, warn_if_patient_facing_text_discloses_treatment
from tests.unit.notifications.test_templates import CLINICAL_FACTS, FORBIDDEN, ORDINARY_FACTS

OVERRIDES = ("CLINIC_NAME", "CLINIC_DISPLAY_NAME", "CLINIC_PHONE", "SMTP_FROM", "SMS_FROM")
PATIENT_TEMPLATES = [(k, c) for k, c in available_templates() if k in PATIENT_KINDS]


@pytest.fixture
def shipped(monkeypatch):
    """The NOTIFICATIONS section exactly as config.yaml defaults it."""
    for name in OVERRIDES:
        monkeypatch.delenv(name, raising=False)
    return load_config()["NOTIFICATIONS"]


@pytest.mark.parametrize("kind, channel", PATIENT_TEMPLATES, ids=[f"{k.value}.{c.value}" for k, c in PATIENT_TEMPLATES])
def test_every_patient_template_with_the_default_configuration_discloses_nothing(shipped, kind, channel):
    settings = Settings.from_config(shipped)
    view = template_facts(kind, {**CLINICAL_FACTS, **ORDINARY_FACTS}, given_name="Ana", time_zone="America/New_York",
                          clinic=settings.clinic, clinic_phone=settings.clinic_phone)
    rendered = render(kind, channel, view)
    shown = rendered.subject if channel == Channel.EMAIL else rendered.body
    assert shown and not FORBIDDEN.search(shown) and not treatment_words_in(shown), shown
    if channel == Channel.EMAIL:
        email = Sender(ChannelSettings.from_config(shipped)).build_email(["ana@example.com"], rendered.subject,
                                                                         rendered.body, "n-1")
        assert not treatment_words_in(email["From"]) and not FORBIDDEN.search(email["From"]), email["From"]
        assert not treatment_words_in(rendered.body), rendered.body


def test_the_default_display_name_is_neutral_and_is_the_sender_name(shipped):
    settings = Settings.from_config(shipped)
    assert settings.clinic == "the clinic"
    email = Sender(ChannelSettings.from_config(shipped)).build_email(["ana@example.com"], "s", "b", "n-1")
    assert email["From"] == "the clinic <clinic@localhost>"
    sms = render(Kind.WELCOME, Channel.SMS, template_facts(Kind.WELCOME, {}, given_name="Ana", time_zone="UTC",
                                                          clinic=settings.clinic, clinic_phone=settings.clinic_phone))
    assert sms.body.startswith("The clinic")


def test_the_legal_name_for_billing_does_not_reach_patients(monkeypatch):
    for name in OVERRIDES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLINIC_NAME", "Sunrise Ketamine Clinic")
    config = load_config()
    assert config["BILLING"]["CLINIC_NAME"] == "Sunrise Ketamine Clinic"
    assert Settings.from_config(config["NOTIFICATIONS"]).clinic == "the clinic"
    monkeypatch.setenv("CLINIC_DISPLAY_NAME", "Sunrise Wellness")
    assert Settings.from_config(load_config()["NOTIFICATIONS"]).clinic == "Sunrise Wellness"


@pytest.mark.parametrize("name, words", [
    ("Sunrise Ketamine Clinic", ["ketamine"]), ("Esketamine Center", ["ketamine", "esketamine"]),
    ("Bay Depression & PTSD Institute", ["depressi", "ptsd"]), ("North Psychiatry Group", ["psychiatr"]),
    ("IV Infusion Lounge", ["infusion"]), ("Harbor Wellness", []), ("the clinic", []),
])
def test_treatment_words_are_found_in_any_case(name, words):
    assert treatment_words_in(name) == words


def test_a_disclosing_display_name_or_sender_is_warned_about(caplog):
    with caplog.at_level(logging.WARNING, logger="services.notifications.dependencies"):
        warn_if_patient_facing_text_discloses_treatment({"CLINIC_DISPLAY_NAME": "Harbor Wellness"})
        assert caplog.records == []
        warn_if_patient_facing_text_discloses_treatment({"CLINIC_DISPLAY_NAME": "Sunrise Ketamine Clinic",
                                                         "SMTP_FROM": "care@depression-ptsd.example"})
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "CLINIC_DISPLAY_NAME" in messages[0] and "ketamine" in messages[0]
    assert "SMTP_FROM" in messages[1] and "depressi, ptsd" in messages[1]

"""Minimum necessary: every template rendered with facts full of clinical
detail must keep it out of SMS bodies and email subjects (and, for patient
messages, out of email bodies too)."""
import re

import pytest

from services.notifications.domain import PATIENT_KINDS, Channel, Kind
from services.notifications.two_way_sms import SMS_ONLY_KINDS
from services.notifications.rendering import (
    ALLOWED_FACTS, available_templates, money, render, staff_webhook_body, template_facts,
)

# Everything an upstream event could carry that must not reach a message.
CLINICAL_FACTS = {
    "drug": "ketamine", "route": "intranasal_esketamine", "dose_mg": 56.0, "mg_per_kg": 0.5,
    "max_dose_mg": 84, "diagnosis_codes": ["F33.2", "F43.10"], "primary_condition": "treatment_resistant_depression",
    "scores": {"phq9": {"total": 27, "band": "severe"}}, "band": "moderately_severe", "baseline_phq9": 22,
    "final_phq9": 4, "change_percent": 81.8, "response": True, "remission": True, "weight_kg": 71.3,
    "reason_code": "hypertension", "flags": ["phq9_self_harm_thoughts"], "instrument": "phq9",
    "alerts": [{"code": "systolic_high", "measure": "systolic", "value": 187, "threshold": 180}],
    "screening_outcome": "needs_review", "family_name": "Lopez", "date_of_birth": "1980-02-03",
}
FORBIDDEN = re.compile(
    r"ketamine|esketamine|spravato|F33|F43|depress|ptsd|anxiety|phq|gad|pcl|cssrs|self.harm|suicid|"
    r"\bmg\b|\b56\b|\b84\b|\b27\b|severe|band|score|dose|systolic|diastolic|187|71\.3|lopez|1980|hypertension",
    re.IGNORECASE,
)
ORDINARY_FACTS = {
    "starts_at": "2026-03-10T13:30:00Z", "number": "INV-000042", "total_cents": 45000, "currency": "USD",
    "due_date": "2026-04-01", "amount_cents": 45000, "received_at": "2026-03-02T15:00:00Z", "balance_cents": 12000,
    "mrn": "MRN0000042", "response_id": "r-1", "raised_at": "2026-03-02T15:00:00Z", "chair_id": "chair-3",
    "clinician_id": "dr.who", "session_id": "s-1", "recorded_at": "2026-03-02T15:00:00Z",
    "issued_at": "2026-03-03T15:00:00Z",
    "appointments": [{"appointment_id": f"a-{n}", "starts_at": f"2026-03-{day}T13:30:00Z"}
                     for n, day in enumerate((16, 18, 20, 23, 25, 30), 1)],
}
TEMPLATES = available_templates()


def facts_for(kind):
    return template_facts(kind, {**CLINICAL_FACTS, **ORDINARY_FACTS}, given_name="Ana", time_zone="America/New_York",
                          clinic="Harbor Wellness", clinic_phone="+1 415 555 0100")


def test_every_patient_kind_has_an_email_and_an_sms_template():
    pairs = set(TEMPLATES)
    for kind in PATIENT_KINDS - SMS_ONLY_KINDS:
        assert {(kind, Channel.EMAIL), (kind, Channel.SMS)} <= pairs, kind
    # Asked or answered by text: an SMS template and no email one.
    for kind in SMS_ONLY_KINDS:
        assert (kind, Channel.SMS) in pairs and (kind, Channel.EMAIL) not in pairs, kind
    assert (Kind.STAFF_RISK_ALERT, Channel.STAFF_EMAIL) in pairs
    assert (Kind.STAFF_VITALS_ALERT, Channel.STAFF_EMAIL) in pairs


@pytest.mark.parametrize("kind, channel", TEMPLATES, ids=[f"{k.value}.{c.value}" for k, c in TEMPLATES])
def test_no_diagnosis_drug_dose_or_score_in_an_sms_or_a_subject(kind, channel):
    rendered = render(kind, channel, facts_for(kind))
    exposed = rendered.subject if channel in (Channel.EMAIL, Channel.STAFF_EMAIL) else rendered.body
    assert exposed and not FORBIDDEN.search(exposed), exposed


@pytest.mark.parametrize("kind", sorted(PATIENT_KINDS - SMS_ONLY_KINDS, key=lambda k: k.value))
def test_patient_email_bodies_carry_no_clinical_detail_either(kind):
    body = render(kind, Channel.EMAIL, facts_for(kind)).body
    assert not FORBIDDEN.search(body), body


@pytest.mark.parametrize("kind", [Kind.STAFF_RISK_ALERT, Kind.STAFF_VITALS_ALERT])
def test_staff_alerts_name_the_patient_by_mrn_only(kind):
    view = facts_for(kind)
    rendered = render(kind, Channel.STAFF_EMAIL, view)
    assert "MRN0000042" in rendered.subject and "MRN0000042" in rendered.body
    assert "Ana" not in rendered.body and "Lopez" not in rendered.body
    webhook = staff_webhook_body(kind, "n-1", view)
    assert "MRN0000042" in webhook and "Ana" not in webhook and "ketamine" not in webhook


def test_a_template_cannot_reach_a_fact_outside_its_allow_list():
    # Staff alerts may name the flag codes, the instrument and the alert
    # codes with their measures; nothing else clinical reaches any view.
    staff_only = {"flags", "instrument", "alerts"}
    for kind in ALLOWED_FACTS:
        leaked = (set(CLINICAL_FACTS) - staff_only) & set(facts_for(kind))
        assert not leaked, (kind, leaked)


def test_reminders_carry_the_pre_session_instructions_and_local_time():
    sms = render(Kind.APPOINTMENT_REMINDER, Channel.SMS, facts_for(Kind.APPOINTMENT_REMINDER)).body
    assert "9:30 AM EDT" in sms and "No food 6 h" in sms and "no driving until tomorrow" in sms
    email = render(Kind.APPOINTMENT_REMINDER, Channel.EMAIL, facts_for(Kind.APPOINTMENT_REMINDER)).body
    assert "ride home" in email and "must not drive until the next day" in email


def test_an_sms_fits_in_a_few_segments():
    for kind, channel in TEMPLATES:
        if channel == Channel.SMS:
            assert len(render(kind, channel, facts_for(kind)).body) <= 320, kind


@pytest.mark.parametrize("cents, currency, text", [
    (45000, "USD", "$450.00"), (5, "USD", "$0.05"), (123456789, "EUR", "€1,234,567.89"), (-1500, "USD", "-$15.00"),
    (100, "CHF", "1.00 CHF"),
])
def test_money_is_formatted_from_integer_cents(cents, currency, text):
    assert money(cents, currency) == text


def test_a_staff_alert_without_an_mrn_still_renders():
    view = template_facts(Kind.STAFF_VITALS_ALERT, {"mrn": None, "chair_id": "chair-3", "session_id": "s-1",
                                                     "recorded_at": "2026-03-02T15:00:00Z", "alerts": []},
                          given_name=None, time_zone="UTC", clinic="Harbor Wellness", clinic_phone="")
    assert render(Kind.STAFF_VITALS_ALERT, Channel.STAFF_EMAIL, view).subject == \
        "URGENT: vitals alert for MRN unknown, chair chair-3"


def test_a_course_is_confirmed_once_with_every_date():
    view = facts_for(Kind.COURSE_CONFIRMATION)
    sms = render(Kind.COURSE_CONFIRMATION, Channel.SMS, view).body
    assert sms.startswith("Harbor Wellness: your 6 appointments are booked: Mon 16 Mar 9:30 AM, Wed 18 Mar 9:30 AM")
    assert "Mon 30 Mar 9:30 AM (EDT)" in sms and "ride home" in sms
    email = render(Kind.COURSE_CONFIRMATION, Channel.EMAIL, view)
    assert email.subject == "Your 6 appointments are booked"
    assert "- Monday 16 March at 9:30 AM EDT\n- Wednesday 18 March at 9:30 AM EDT\n" in email.body
    single = template_facts(Kind.COURSE_CONFIRMATION, {"appointments": ORDINARY_FACTS["appointments"][:1]},
                            given_name="Ana", time_zone="America/New_York", clinic="Harbor Wellness",
                            clinic_phone="+1 415 555 0100")
    assert render(Kind.COURSE_CONFIRMATION, Channel.EMAIL, single).subject == "Your 1 appointment is booked"

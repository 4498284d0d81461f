"""The self-report link message: the link and the clinic's display name,
and nothing that tells an onlooker what the form or the treatment is."""
from common import self_report_links as links
from services.notifications.domain import Channel, Kind, PATIENT_KINDS, treatment_words_in
from services.notifications.rendering import render, template_facts

LINK = links.link("https://forms.example.org", links.token_for("secret", "req-1"))
FACTS = {"request_id": "req-1", "instrument": "phq9", "total": 22, "band": "severe",
         "primary_condition": "treatment_resistant_depression"}


def view(**extra):
    return template_facts(Kind.SELF_REPORT_REQUEST, FACTS, given_name="Ana", time_zone="America/New_York",
                          clinic="Harbor Wellness", clinic_phone="+1 415 555 0100", link=LINK, **extra)


def test_the_sms_is_the_neutral_line_with_the_link():
    assert render(Kind.SELF_REPORT_REQUEST, Channel.SMS, view()).body == \
        f"Harbor Wellness: a short check-in form is ready: {LINK}"


def test_the_email_names_no_form_condition_or_score():
    email = render(Kind.SELF_REPORT_REQUEST, Channel.EMAIL, view())
    assert email.subject == "A short check-in form is ready"
    assert LINK in email.body and "Hello Ana" in email.body
    for text in (email.subject, email.body, LINK):
        assert not treatment_words_in(text)
        assert not any(word in text.lower() for word in ("phq", "gad", "22", "severe"))


def test_it_is_a_patient_message_so_consent_preferences_and_quiet_hours_apply():
    assert Kind.SELF_REPORT_REQUEST in PATIENT_KINDS

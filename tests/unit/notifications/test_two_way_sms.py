"""Two-way SMS as plain rules: what a texted word is read as, whether a
request is the provider's, when the pre-visit message goes out, and what
the patient sees in it and in the answers to STOP, START and HELP."""
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from services.notifications.channels import sign
from services.notifications.domain import Channel, Kind, Timing
from services.notifications.gate import AppointmentFacts, RecipientFacts, gate_patient_message
from services.notifications.rendering import render, template_facts
from services.notifications.two_way_sms import (
    InboundSettings, InboundSms, Keyword, classify, plan_previsit, previsit_answer, sender_hint, signed_by_provider,
)

UTC = timezone.utc
NY = "America/New_York"
TIMING = Timing()


def utc(text):
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# ---------------------------------------------------------------- keywords


@pytest.mark.parametrize("text, keyword", [
    ("STOP", Keyword.STOP), ("stop", Keyword.STOP), ("  Stop.  ", Keyword.STOP), ("STOP!", Keyword.STOP),
    ("unsubscribe", Keyword.STOP), ("Cancel", Keyword.STOP), ("END", Keyword.STOP), ("quit", Keyword.STOP),
    ("StopAll", Keyword.STOP),
    ("START", Keyword.START), ("unstop", Keyword.START), (" Start ", Keyword.START),
    ("HELP", Keyword.HELP), ("help?", Keyword.HELP), ("info", Keyword.HELP),
    ("YES", Keyword.YES), ("yes", Keyword.YES), ("Yes!", Keyword.YES), ("y", Keyword.YES), ("\tYES\n", Keyword.YES),
    ("NO", Keyword.NO), ("no.", Keyword.NO), ("n", Keyword.NO),
    # A keyword inside a sentence is not one.
    ("please stop by at 3", Keyword.OTHER), ("yes but I have no ride", Keyword.OTHER), ("YESS", Keyword.OTHER),
    ("running late", Keyword.OTHER), ("", Keyword.OTHER), ("   ", Keyword.OTHER), (None, Keyword.OTHER),
    ("👍", Keyword.OTHER),
])
def test_a_text_is_read_whatever_its_case_spacing_and_closing_punctuation(text, keyword):
    assert classify(text) is keyword


@pytest.mark.parametrize("keyword, answer", [
    (Keyword.YES, "confirmed"), (Keyword.NO, "declined"), (Keyword.OTHER, "unrecognised"),
])
def test_a_reply_to_the_previsit_message_is_confirmed_declined_or_unrecognised(keyword, answer):
    assert previsit_answer(keyword) == answer


# ---------------------------------------------------------------- signature

BODY = b'{"message_id": "SM1", "from": "+14155550123", "body": "STOP"}'
NOW = 1767225600
SETTINGS = InboundSettings(secret="provider-secret", tolerance_seconds=300)


def test_a_request_signed_with_the_secret_over_a_fresh_timestamp_is_the_providers():
    signature = sign("provider-secret", str(NOW), BODY)
    assert signed_by_provider(SETTINGS, str(NOW), signature, BODY, now=NOW + 299)
    assert signed_by_provider(SETTINGS, str(NOW), signature, BODY, now=NOW - 299)  # a clock slightly behind


@pytest.mark.parametrize("change", ["body", "secret", "timestamp", "stale", "future", "missing", "garbled"])
def test_anything_else_is_not(change):
    timestamp, secret, body, now = str(NOW), "provider-secret", BODY, NOW
    signature = sign(secret, timestamp, body)
    if change == "body":
        body = body.replace(b"STOP", b"START")
    elif change == "secret":
        signature = sign("guessed", timestamp, body)
    elif change == "timestamp":
        timestamp = str(NOW + 1)  # the timestamp is signed too
    elif change == "stale":
        now = NOW + 301
    elif change == "future":
        now = NOW - 301
    elif change == "missing":
        signature = None
    elif change == "garbled":
        timestamp = "yesterday"
    assert not signed_by_provider(SETTINGS, timestamp, signature, body, now=now)


def test_without_a_configured_secret_nothing_is_the_providers():
    unset = InboundSettings.from_config({"SMS_WEBHOOK_SECRET": ""})
    assert unset.secret is None and unset.tolerance_seconds == 300
    assert not signed_by_provider(unset, str(NOW), sign("", str(NOW), BODY), BODY, now=NOW)
    assert InboundSettings.from_config({"SMS_WEBHOOK_SECRET": "k", "SMS_WEBHOOK_TOLERANCE_SECONDS": "60"}) == \
        InboundSettings("k", 60)


# ---------------------------------------------------------------- the request body


def test_the_providers_body_is_read_by_its_field_names_ignoring_the_rest():
    text = InboundSms.model_validate({"message_id": "SM1", "from": "+1 (415) 555-0123", "to": "+14155550100",
                                      "body": " STOP ", "segments": 1, "carrier": "x"})
    assert (text.message_id, text.sender, text.body) == ("SM1", "+14155550123", "STOP")


@pytest.mark.parametrize("payload", [
    {"from": "+14155550123", "body": "YES"},
    {"message_id": "SM1", "from": "4155550123", "body": "YES"},
    {"message_id": "SM\x001", "from": "+14155550123", "body": "YES"},
    {"message_id": "SM 1", "from": "+14155550123", "body": "YES"},
    {"message_id": "x" * 101, "from": "+14155550123", "body": "YES"},
    {"message_id": "SM1", "from": "+14155550123", "body": "y" * 1601},
    {"message_id": "SM1", "from": "+14155550123"},
])
def test_a_body_that_is_not_an_inbound_sms_is_refused(payload):
    with pytest.raises(ValidationError):
        InboundSms.model_validate(payload)


def test_an_unknown_number_is_kept_by_its_last_digits_only():
    assert sender_hint("+14155550123") == "…0123"


# ---------------------------------------------------------------- the pre-visit message


def test_the_previsit_message_goes_the_day_before_at_ten_on_the_patients_clock():
    # Wednesday 11 March 2026, 09:00 in New York (EDT since 8 March).
    plan = plan_previsit(utc("2026-03-11 13:00"), utc("2026-03-01 12:00"), NY, TIMING)
    assert plan.decision.send_at == utc("2026-03-10 14:00")  # Tuesday 10:00 EDT
    # Across the DST change: Monday 9 March 09:00 EDT, the day before is Sunday 8 March (10:00 EDT).
    plan = plan_previsit(utc("2026-03-09 13:00"), utc("2026-03-01 12:00"), NY, TIMING)
    assert plan.decision.send_at == utc("2026-03-08 14:00")


def test_booked_after_that_time_it_goes_at_once_or_when_quiet_hours_end():
    starts = utc("2026-03-11 19:00")  # Wednesday 15:00 EDT
    booked = utc("2026-03-10 20:00")  # Tuesday 16:00 EDT, after the day-before 10:00
    assert plan_previsit(starts, booked, NY, TIMING).decision.send_at == booked
    late_evening = utc("2026-03-11 02:00")  # Tuesday 22:00 EDT: held until Wednesday 08:00
    decision = plan_previsit(starts, late_evening, NY, TIMING).decision
    assert decision.send_at == utc("2026-03-11 12:00") and "quiet hours" in decision.deferral


def test_it_is_not_sent_when_it_could_not_arrive_six_hours_before():
    starts = utc("2026-03-11 13:00")  # Wednesday 09:00 EDT
    decision = plan_previsit(starts, utc("2026-03-11 02:00"), NY, TIMING).decision  # booked Tuesday 22:00
    assert decision.send_at is None and "too close" in decision.skip_reason
    assert plan_previsit(starts, utc("2026-03-11 08:00"), NY, TIMING).decision.send_at is None


def test_the_previsit_time_and_lead_are_configuration():
    timing = Timing.from_config({"PREVISIT_LOCAL_TIME": "17:30", "PREVISIT_MIN_LEAD_HOURS": "13"})
    assert plan_previsit(utc("2026-03-11 13:00"), utc("2026-03-01 12:00"), NY, timing).decision.send_at == \
        utc("2026-03-10 21:30")
    assert plan_previsit(utc("2026-03-11 13:00"), utc("2026-03-11 00:30"), NY, timing).decision.send_at is None


PATIENT = RecipientFacts(time_zone=NY, phone="+14155550123", email="ana@example.com", sms_consent=True)
OPTED_OUT = RecipientFacts(time_zone=NY, phone="+14155550123", sms_consent=False, sms_enabled=False)
NOON = utc("2026-03-10 16:00")


def gate(kind, recipient=PATIENT, now=NOON, **kw):
    return gate_patient_message(kind=kind, channel=Channel.SMS, now=now, recipient=recipient, timing=TIMING, **kw)


def test_the_answer_to_stop_start_or_help_goes_without_consent_and_at_night():
    for kind in (Kind.SMS_OPT_OUT_CONFIRMATION, Kind.SMS_OPT_IN_CONFIRMATION, Kind.SMS_HELP_REPLY):
        assert gate(kind, OPTED_OUT).action == "send"
        assert gate(kind, OPTED_OUT, now=utc("2026-03-11 04:00")).action == "send"  # midnight in New York
        assert gate(kind, RecipientFacts(time_zone=NY)).action == "skip"  # no number to answer


def test_the_previsit_message_needs_consent_and_an_appointment_as_planned():
    starts = utc("2026-03-11 13:00")
    assert gate(Kind.PREVISIT_INSTRUCTIONS, planned_starts_at=starts,
                appointment=AppointmentFacts(starts, False)).action == "send"
    assert gate(Kind.PREVISIT_INSTRUCTIONS, OPTED_OUT, planned_starts_at=starts).reason == "no sms consent in force"
    assert gate(Kind.PREVISIT_INSTRUCTIONS, planned_starts_at=starts,
                appointment=AppointmentFacts(starts, True)).reason == "the appointment was cancelled"
    assert gate(Kind.PREVISIT_INSTRUCTIONS, planned_starts_at=starts,
                appointment=AppointmentFacts(starts + timedelta(days=1), False)).reason == "the appointment was moved"
    # Held by a broker outage until five hours before: too late to fast.
    assert gate(Kind.PREVISIT_INSTRUCTIONS, planned_starts_at=starts, now=starts - timedelta(hours=5),
                appointment=AppointmentFacts(starts, False)).reason == "too late to be of use before the appointment"


# ---------------------------------------------------------------- wording


def words(kind, **facts):
    view = template_facts(kind, facts, given_name="Ana", time_zone=NY, clinic="Harbor Wellness",
                          clinic_phone="+1 415 555 0100")
    return render(kind, Channel.SMS, view).body


def test_the_previsit_message_says_what_to_do_and_how_to_answer():
    text = words(Kind.PREVISIT_INSTRUCTIONS, starts_at="2026-03-11T13:00:00Z")
    assert text.startswith("Harbor Wellness: for your visit Wednesday 11 March at 9:00 AM EDT")
    assert "no solid food for 6 hours before" in text and "clear liquids only until 2 hours before" in text
    assert "An adult must drive you home" in text and "Reply YES to confirm, or NO" in text


def test_help_answers_with_the_clinics_name_and_phone_and_stop_says_it_is_the_last():
    assert words(Kind.SMS_HELP_REPLY).startswith("Harbor Wellness: for help call +1 415 555 0100.")
    stop = words(Kind.SMS_OPT_OUT_CONFIRMATION)
    assert "no more texts" in stop and "Reply START" in stop and "+1 415 555 0100" in stop
    assert "Reply STOP" in words(Kind.SMS_OPT_IN_CONFIRMATION)

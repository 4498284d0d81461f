"""Consent and appointment checks at send time, retries, dedupe keys."""
from datetime import datetime, timedelta, timezone

import pytest

from services.notifications.domain import (
    Channel, Kind, Outcome, RetryPolicy, Status, Timing, after_attempt, dedupe_key, is_newer, resend_allowed,
)
from services.notifications.gate import AppointmentFacts, RecipientFacts, gate_patient_message

UTC = timezone.utc
NOON_NY = datetime(2026, 6, 10, 16, 0, tzinfo=UTC)  # 12:00 EDT
NIGHT_NY = datetime(2026, 6, 11, 3, 0, tzinfo=UTC)  # 23:00 EDT
PATIENT = RecipientFacts(time_zone="America/New_York", email="p@example.com", phone="+14155550123",
                         email_consent=True, sms_consent=True)


def gate(kind=Kind.WELCOME, channel=Channel.EMAIL, now=NOON_NY, recipient=PATIENT, **kw):
    return gate_patient_message(kind=kind, channel=channel, now=now, recipient=recipient, timing=Timing(), **kw)


@pytest.mark.parametrize("recipient, channel, action, reason", [
    (PATIENT, Channel.EMAIL, "send", None),
    (PATIENT, Channel.SMS, "send", None),
    (None, Channel.EMAIL, "wait", "contact details"),
    (RecipientFacts(email="p@example.com", email_consent=False, sms_consent=True, phone="+1"), Channel.EMAIL,
     "skip", "no email consent"),
    (RecipientFacts(email="p@example.com", email_consent=True, sms_consent=False, phone="+1"), Channel.SMS,
     "skip", "no sms consent"),
    (RecipientFacts(email=None, email_consent=True), Channel.EMAIL, "skip", "no email address"),
    (RecipientFacts(phone=None, sms_consent=True), Channel.SMS, "skip", "no mobile number"),
    (RecipientFacts(phone="+1", sms_consent=True, sms_enabled=False), Channel.SMS, "skip", "turned sms"),
])
def test_patients_are_messaged_only_on_consented_channels(recipient, channel, action, reason):
    result = gate(channel=channel, recipient=recipient)
    assert result.action == action
    assert reason is None or reason in result.reason


def test_quiet_hours_defer_to_the_morning_and_urgent_does_not():
    deferred = gate(now=NIGHT_NY)
    assert (deferred.action, deferred.until) == ("defer", datetime(2026, 6, 11, 12, 0, tzinfo=UTC))
    assert gate(now=NIGHT_NY, urgent=True).action == "send"


@pytest.mark.parametrize("appointment, planned, now, action, reason", [
    (AppointmentFacts(NOON_NY + timedelta(hours=2), False), NOON_NY + timedelta(hours=2), NOON_NY, "send", None),
    (AppointmentFacts(NOON_NY + timedelta(hours=2), True), NOON_NY + timedelta(hours=2), NOON_NY, "skip", "cancelled"),
    (AppointmentFacts(NOON_NY + timedelta(hours=5), False), NOON_NY + timedelta(hours=2), NOON_NY, "skip", "moved"),
    # A reminder retried until less than an hour before is no use.
    (AppointmentFacts(NOON_NY + timedelta(minutes=59), False), NOON_NY + timedelta(minutes=59), NOON_NY,
     "skip", "too late"),
    (AppointmentFacts(NOON_NY + timedelta(minutes=60), False), NOON_NY + timedelta(minutes=60), NOON_NY, "send", None),
    # 23:00 local, appointment 07:30 next day: the morning would be too late.
    (AppointmentFacts(datetime(2026, 6, 11, 11, 30, tzinfo=UTC), False), datetime(2026, 6, 11, 11, 30, tzinfo=UTC),
     NIGHT_NY, "skip", "too close"),
])
def test_reminders_follow_their_appointment(appointment, planned, now, action, reason):
    result = gate(kind=Kind.APPOINTMENT_REMINDER, now=now, appointment=appointment, planned_starts_at=planned)
    assert result.action == action
    assert reason is None or reason in result.reason


def test_a_confirmation_after_the_appointment_began_is_skipped():
    result = gate(kind=Kind.APPOINTMENT_CONFIRMATION, appointment=AppointmentFacts(NOON_NY, False))
    assert (result.action, result.reason) == ("skip", "the appointment has already begun")


def test_the_cancellation_notice_is_not_stopped_by_the_cancellation():
    result = gate(kind=Kind.APPOINTMENT_CANCELLED, appointment=AppointmentFacts(NOON_NY + timedelta(days=1), True))
    assert result.action == "send"


POLICY = RetryPolicy(base_seconds=2, cap_seconds=10, max_attempts=5)


@pytest.mark.parametrize("attempts, delay", [(1, 2), (2, 4), (3, 8), (4, 10)])
def test_backoff_doubles_up_to_the_cap(attempts, delay):
    after = after_attempt(Outcome(False, "refused"), attempts, NOON_NY, POLICY)
    assert (after.status, after.retry_at) == (Status.RETRYING, NOON_NY + timedelta(seconds=delay))


def test_after_the_last_attempt_the_message_is_dead():
    assert after_attempt(Outcome(False, "refused"), 5, NOON_NY, POLICY).status == Status.DEAD


def test_a_permanent_failure_is_dead_at_once():
    assert after_attempt(Outcome(False, "550 no such user", permanent=True), 1, NOON_NY, POLICY).status == Status.DEAD


def test_a_delivered_message_is_sent():
    assert after_attempt(Outcome(True, "250 ok"), 3, NOON_NY, POLICY).status == Status.SENT


def test_retry_policy_from_configuration():
    assert RetryPolicy.from_config({"RETRY_BASE_SECONDS": 0.2, "RETRY_CAP_SECONDS": 1, "MAX_ATTEMPTS": 3}) == \
        RetryPolicy(0.2, 1.0, 3)


def test_dedupe_keys_name_the_reason_kind_and_channel():
    assert dedupe_key("a1@2026-06-10T16:00:00Z/2h", Kind.APPOINTMENT_REMINDER, Channel.SMS) == \
        "a1@2026-06-10T16:00:00Z/2h:appointment_reminder:sms"
    assert dedupe_key("e1", Kind.WEBHOOK, Channel.WEBHOOK, "ehr") == "e1:webhook:webhook:ehr"


@pytest.mark.parametrize("incoming, current, newer", [
    (NOON_NY, None, True),
    (NOON_NY, NOON_NY - timedelta(seconds=1), True),
    (NOON_NY, NOON_NY, False),
    (NOON_NY, NOON_NY + timedelta(seconds=1), False),
    (NOON_NY, (NOON_NY - timedelta(seconds=1)).replace(tzinfo=None), True),  # SQLite's naive UTC
])
def test_the_newest_fact_wins(incoming, current, newer):
    assert is_newer(incoming, current) is newer


@pytest.mark.parametrize("status, allowed", [
    (Status.DEAD, True), (Status.SKIPPED, True), (Status.RETRYING, True), (Status.QUEUED, True),
    (Status.SENT, False), (Status.CANCELLED, False),
])
def test_what_staff_may_resend(status, allowed):
    assert (resend_allowed(status) is None) is allowed


def test_a_course_confirmation_lists_the_course_as_it_stands():
    from services.notifications.gate import course_as_it_stands

    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    course = [{"appointment_id": f"a-{n}", "starts_at": f"2026-06-0{n + 1}T13:00:00Z"} for n in range(1, 5)]
    known = {"a-2": AppointmentFacts(datetime(2026, 6, 9, 13, 0, tzinfo=UTC), False),   # moved a week on
             "a-3": AppointmentFacts(datetime(2026, 6, 4, 13, 0, tzinfo=UTC), True)}    # cancelled
    assert course_as_it_stands(course, known, now) == [
        {"appointment_id": "a-1", "starts_at": "2026-06-02T13:00:00Z"},
        {"appointment_id": "a-4", "starts_at": "2026-06-05T13:00:00Z"},
        {"appointment_id": "a-2", "starts_at": "2026-06-09T13:00:00Z"}]
    assert course_as_it_stands(course, known, datetime(2026, 6, 30, tzinfo=UTC)) == []

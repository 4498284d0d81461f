"""Quiet hours, reminder timing and follow-ups across time zones and DST."""
from datetime import datetime, time, timedelta, timezone

import pytest

from services.notifications.domain import (
    QuietHours, Timing, follow_up_time, follow_up_too_late, offset_label, plan_reminders, when_to_send,
)

UTC = timezone.utc
NY, LA, LONDON, SYDNEY, KOLKATA = (
    "America/New_York", "America/Los_Angeles", "Europe/London", "Australia/Sydney", "Asia/Kolkata")
QUIET = QuietHours()  # 21:00–08:00
TIMING = Timing()


def utc(text):
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize("moment, zone, quiet", [
    # New York in winter is UTC-5: 20:59 local, 21:00, 07:59, 08:00.
    ("2026-01-15 01:59", NY, False), ("2026-01-15 02:00", NY, True),
    ("2026-01-15 12:59", NY, True), ("2026-01-15 13:00", NY, False),
    # ...and UTC-4 in summer: the same wall-clock edges move by an hour.
    ("2026-07-15 00:59", NY, False), ("2026-07-15 01:00", NY, True),
    ("2026-07-15 11:59", NY, True), ("2026-07-15 12:00", NY, False),
    ("2026-01-15 04:59", LA, False), ("2026-01-15 05:00", LA, True),
    ("2026-07-15 19:59", LONDON, False), ("2026-07-15 20:00", LONDON, True),
    # Sydney is UTC+11 in January (its summer).
    ("2026-01-15 09:59", SYDNEY, False), ("2026-01-15 10:00", SYDNEY, True), ("2026-01-15 21:00", SYDNEY, False),
    # Kolkata is UTC+5:30, no DST.
    ("2026-01-15 15:29", KOLKATA, False), ("2026-01-15 15:30", KOLKATA, True), ("2026-01-15 02:30", KOLKATA, False),
])
def test_quiet_hours_are_in_the_patients_wall_clock(moment, zone, quiet):
    assert QUIET.contains(utc(moment), zone) is quiet


@pytest.mark.parametrize("start, end, local, quiet", [
    (time(21), time(8), time(20, 59), False), (time(21), time(8), time(23), True),
    (time(21), time(8), time(0), True), (time(21), time(8), time(8), False),
    (time(13), time(14), time(13, 30), True), (time(13), time(14), time(14), False),  # same-day window
    (time(0), time(0), time(3), False),  # equal ends: no quiet hours
])
def test_quiet_hours_windows(start, end, local, quiet):
    moment = datetime.combine(datetime(2026, 5, 5).date(), local, tzinfo=UTC)
    assert QuietHours(start, end).contains(moment, "UTC") is quiet


@pytest.mark.parametrize("moment, zone, expected", [
    # Evening before the spring-forward night in New York (2026-03-08 02:00
    # EST -> 03:00 EDT): the morning is 08:00 EDT = 12:00Z, not 13:00Z.
    ("2026-03-08 03:30", NY, "2026-03-08 12:00"),  # 22:30 EST on the 7th
    ("2026-03-08 06:00", NY, "2026-03-08 12:00"),  # 01:00 EST, before the jump
    ("2026-03-08 07:30", NY, "2026-03-08 12:00"),  # 03:30 EDT, after it
    # Fall back (2026-11-01 02:00 EDT -> 01:00 EST): 08:00 EST = 13:00Z.
    ("2026-11-01 02:00", NY, "2026-11-01 13:00"),  # 22:00 EDT on Oct 31
    ("2026-11-01 05:30", NY, "2026-11-01 13:00"),  # 01:30 EST, the repeated hour
    ("2026-11-01 12:59", NY, "2026-11-01 13:00"),
    # Outside quiet hours nothing moves.
    ("2026-11-01 13:00", NY, "2026-11-01 13:00"),
    # Europe changes on other dates (2026-03-29): 08:00 BST = 07:00Z.
    ("2026-03-28 22:00", LONDON, "2026-03-29 07:00"),
    # Sydney ends DST on 2026-04-05 (03:00 AEDT -> 02:00 AEST): 08:00 AEST = 22:00Z.
    ("2026-04-04 12:00", SYDNEY, "2026-04-04 22:00"),
])
def test_messages_due_in_quiet_hours_wait_for_the_local_morning(moment, zone, expected):
    assert QUIET.next_allowed(utc(moment), zone) == utc(expected)


@pytest.mark.parametrize("starts_at, zone, expected_48h, expected_2h", [
    # 10:00 EDT on Monday 9 March: 48 elapsed hours earlier is 09:00 EST on
    # Saturday, across the spring-forward night.
    ("2026-03-09 14:00", NY, "2026-03-07 14:00", "2026-03-09 12:00"),
    # 10:00 EST on Monday 2 November: 48 h earlier is 11:00 EDT on Saturday.
    ("2026-11-02 15:00", NY, "2026-10-31 15:00", "2026-11-02 13:00"),
    # A zone without DST keeps the wall clock.
    ("2026-03-09 06:00", KOLKATA, "2026-03-07 06:00", "2026-03-09 04:00"),
])
def test_reminders_are_elapsed_hours_before_across_dst(starts_at, zone, expected_48h, expected_2h):
    now = utc(starts_at) - timedelta(days=5)
    plans = {p.label: p for p in plan_reminders(utc(starts_at), now, zone, TIMING)}
    assert plans["48h"].decision.send_at == utc(expected_48h)
    assert plans["2h"].decision.send_at == utc(expected_2h)


@pytest.mark.parametrize("local_start, zone, sent_at, skipped", [
    # 2 h reminder at 07:30 local -> 08:00 is still 90 min ahead: deferred.
    ("2026-03-10 13:30", NY, "2026-03-10 12:00", False),
    # 07:00 local -> 08:00 is exactly the 60 min minimum lead: still sent.
    ("2026-03-10 13:00", NY, "2026-03-10 12:00", False),
    # 06:30 local -> 08:00 would be 30 min before: skipped and logged.
    ("2026-03-10 12:30", NY, None, True),
    # Same wall-clock cases on the day after the fall back (EST, UTC-5).
    ("2026-11-02 14:30", NY, "2026-11-02 13:00", False),
    ("2026-11-02 13:30", NY, None, True),
    # Kolkata: 09:30 IST appointment, 07:30 reminder -> 08:00 IST = 02:30Z.
    ("2026-03-10 04:00", KOLKATA, "2026-03-10 02:30", False),
])
def test_a_reminder_in_quiet_hours_waits_unless_that_is_too_late(local_start, zone, sent_at, skipped):
    starts = utc(local_start)
    plan = next(p for p in plan_reminders(starts, starts - timedelta(days=5), zone, TIMING) if p.label == "2h")
    assert plan.decision.send_at == (utc(sent_at) if sent_at else None)
    assert (plan.decision.skip_reason is not None) is skipped


def test_an_offset_already_past_at_booking_is_not_planned():
    starts = utc("2026-06-10 16:00")
    plans = plan_reminders(starts, starts - timedelta(hours=30), NY, TIMING)
    assert [(p.label, p.passed) for p in plans] == [("48h", True), ("2h", False)]


def test_reminder_offsets_come_from_configuration():
    timing = Timing.from_config({"REMINDER_OFFSETS_HOURS": [2, 24, 0.5], "QUIET_HOURS_START": "22:30",
                                 "QUIET_HOURS_END": "07:00", "REMINDER_MIN_LEAD_MINUTES": 15})
    assert [offset_label(o) for o in timing.reminder_offsets] == ["24h", "2h", "30m"]
    assert timing.quiet == QuietHours(time(22, 30), time(7))
    assert timing.min_reminder_lead == timedelta(minutes=15)


def test_urgent_messages_ignore_quiet_hours():
    night = utc("2026-01-15 07:00")  # 02:00 in New York
    assert when_to_send(night, NY, TIMING, urgent=True).send_at == night
    assert when_to_send(night, NY, TIMING).send_at == utc("2026-01-15 13:00")


@pytest.mark.parametrize("ended_at, zone, expected", [
    # A session ending the evening before spring forward: 10:00 EDT on the 8th.
    ("2026-03-07 23:00", NY, "2026-03-08 14:00"),
    # Ending late evening local time but already "tomorrow" in UTC: the
    # follow-up is the next local day, not two days later.
    ("2026-03-11 03:30", NY, "2026-03-11 14:00"),  # 23:30 EDT on the 10th
    ("2026-10-31 20:00", NY, "2026-11-01 15:00"),  # 10:00 EST after fall back
    ("2026-01-15 01:00", SYDNEY, "2026-01-15 23:00"),  # 12:00 AEDT on the 15th -> 10:00 on the 16th
    ("2026-07-15 12:00", LA, "2026-07-16 17:00"),
])
def test_the_follow_up_is_the_next_local_morning(ended_at, zone, expected):
    assert follow_up_time(utc(ended_at), zone, TIMING) == utc(expected)


@pytest.mark.parametrize("now, too_late", [
    ("2026-03-08 14:00", False), ("2026-03-09 03:59", False),  # until midnight EDT on the 8th
    ("2026-03-09 04:00", True), ("2026-03-20 12:00", True),
])
def test_a_follow_up_replayed_after_its_day_is_not_sent(now, too_late):
    assert follow_up_too_late(utc("2026-03-07 23:00"), utc(now), NY, TIMING) is too_late


def test_a_deferral_says_why_and_until_when():
    night = utc("2026-01-15 07:00")  # 02:00 in New York
    decision = when_to_send(night, NY, TIMING)
    assert decision.deferral == ("quiet hours (21:00–08:00 in America/New_York): due at 02:00 local time, "
                                 "held until Thu 08:00 local time")
    assert when_to_send(utc("2026-01-15 17:00"), NY, TIMING).deferral is None
    assert when_to_send(night, NY, TIMING, urgent=True).deferral is None

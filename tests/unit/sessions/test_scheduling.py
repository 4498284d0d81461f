from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from common.errors import Conflict, ValidationFailed
from services.sessions.domain import (
    AppointmentStatus, ClinicHours, CourseRules, Rules, appointment_length, check_appointment_move,
    check_check_in_time, check_in_window, check_on_grid, check_spacing, check_within_hours, free_starts, is_late_cancellation, next_maintenance_due, propose_course,
    slot_starts,
)

HOURS = ClinicHours()  # 08:00–18:00 America/New_York, Monday to Friday, 15-minute grid
UTC = timezone.utc
MONDAY = date(2026, 11, 30)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """Clinic local time (EST in winter: UTC-5) as a UTC instant."""
    return datetime.combine(day, time(hour, minute), HOURS.zone).astimezone(UTC)


@pytest.mark.parametrize("start, minutes, ok", [
    ((8, 0), 60, True),        # first slot of the day
    ((7, 45), 60, False),      # before opening
    ((17, 0), 60, True),       # ends exactly at closing
    ((17, 15), 60, False),     # runs past closing
    ((16, 0), 120, True),      # esketamine observation ends at closing
    ((16, 15), 120, False),
])
def test_clinic_hours_at_every_edge(start, minutes, ok):
    begins = at(MONDAY, *start)
    if ok:
        check_within_hours(begins, begins + timedelta(minutes=minutes), HOURS)
    else:
        with pytest.raises(ValidationFailed) as caught:
            check_within_hours(begins, begins + timedelta(minutes=minutes), HOURS)
        assert caught.value.details[0]["field"] == "starts_at"


@pytest.mark.parametrize("day, open_", [
    (MONDAY, True), (MONDAY + timedelta(days=4), True),                    # Friday
    (MONDAY + timedelta(days=5), False), (MONDAY + timedelta(days=6), False),  # the weekend
])
def test_closed_days_are_refused(day, open_):
    begins = at(day, 10)
    if open_:
        check_within_hours(begins, begins + timedelta(hours=1), HOURS)
    else:
        with pytest.raises(ValidationFailed, match="closed"):
            check_within_hours(begins, begins + timedelta(hours=1), HOURS)


def test_hours_are_kept_in_the_clinic_time_zone_across_dst():
    # Summer: 08:00 EDT is 12:00Z, not 13:00Z.
    summer = date(2026, 7, 6)
    check_within_hours(datetime(2026, 7, 6, 12, 0, tzinfo=UTC), datetime(2026, 7, 6, 13, 0, tzinfo=UTC), HOURS)
    with pytest.raises(ValidationFailed):
        check_within_hours(datetime(2026, 7, 6, 11, 45, tzinfo=UTC), datetime(2026, 7, 6, 12, 45, tzinfo=UTC), HOURS)
    assert HOURS.day_bounds(summer)[0] == datetime(2026, 7, 6, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("minute, second, ok", [(0, 0, True), (15, 0, True), (45, 0, True), (10, 0, False),
                                                (0, 30, False)])
def test_appointments_start_on_the_grid(minute, second, ok):
    moment = at(MONDAY, 9, minute).replace(second=second)
    if ok:
        check_on_grid(moment, HOURS)
    else:
        with pytest.raises(ValidationFailed):
            check_on_grid(moment, HOURS)


def test_slots_cover_the_whole_visit_and_nothing_more():
    begins = at(MONDAY, 9)
    assert slot_starts(begins, begins + timedelta(hours=1), 15) == [begins + timedelta(minutes=m) for m in (0, 15, 30, 45)]
    assert slot_starts(begins, begins, 15) == []


@pytest.mark.parametrize("route, config, minutes", [
    ("iv_infusion", {}, 60), ("im_injection", {}, 60), ("intranasal_esketamine", {}, 120),
    ("oral_sublingual", {}, 90),
    ("iv_infusion", {"iv_infusion": 50}, 60),  # rounded up to whole slots
    ("iv_infusion", {"iv_infusion": 45}, 45),
])
def test_slot_length_follows_the_route(route, config, minutes):
    assert appointment_length(route, HOURS, config) == timedelta(minutes=minutes)


@pytest.mark.parametrize("gap, ok", [
    (timedelta(hours=48), True), (timedelta(hours=47, minutes=45), False),
    (-timedelta(hours=48), True), (-timedelta(hours=47, minutes=45), False),
    (timedelta(0), False),
])
def test_sessions_at_least_48_hours_apart(gap, ok):
    begins = at(MONDAY, 9)
    if ok:
        check_spacing(begins + gap, [begins], 48)
    else:
        with pytest.raises(Conflict, match="48 hours"):
            check_spacing(begins + gap, [begins], 48)


def test_induction_course_from_a_monday_is_two_weeks_of_mon_wed_fri():
    starts = propose_course(at(MONDAY, 9), 6, HOURS, CourseRules(), timedelta(hours=1))
    assert [s.astimezone(HOURS.zone).strftime("%a %d %H:%M") for s in starts] == [
        "Mon 30 09:00", "Wed 02 09:00", "Fri 04 09:00", "Mon 07 09:00", "Wed 09 09:00", "Fri 11 09:00"]
    assert all(b - a >= timedelta(hours=48) for a, b in zip(starts, starts[1:]))


def test_a_course_starting_on_a_closed_day_moves_to_the_next_open_one():
    saturday = MONDAY - timedelta(days=2)
    starts = propose_course(at(saturday, 9), 2, HOURS, CourseRules(), timedelta(hours=1))
    assert starts[0] == at(MONDAY, 9)


@pytest.mark.parametrize("sessions, max_days, ok", [(6, 21, True), (6, 11, True), (6, 10, False), (12, 21, False)])
def test_the_course_must_fit_its_window(sessions, max_days, ok):
    rules = CourseRules(max_course_days=max_days)
    if ok:
        assert len(propose_course(at(MONDAY, 9), sessions, HOURS, rules, timedelta(hours=1))) == sessions
    else:
        with pytest.raises(ValidationFailed):
            propose_course(at(MONDAY, 9), sessions, HOURS, rules, timedelta(hours=1))


def test_a_course_out_of_hours_is_refused():
    with pytest.raises(ValidationFailed):
        propose_course(at(MONDAY, 17, 30), 6, HOURS, CourseRules(), timedelta(hours=1))


@pytest.mark.parametrize("hours_before, late", [(24, False), (23.99, True), (48, False), (1, True), (0, True)])
def test_late_cancellation_under_24_hours(hours_before, late):
    begins = at(MONDAY, 9)
    assert is_late_cancellation(begins, begins - timedelta(hours=hours_before)) is late


@pytest.mark.parametrize("status, action, ok", [
    ("scheduled", "cancel", True), ("scheduled", "reschedule", True), ("scheduled", "no_show", True),
    ("scheduled", "check_in", True),
    ("cancelled", "cancel", False), ("cancelled", "reschedule", False), ("checked_in", "cancel", False),
    ("completed", "no_show", False), ("no_show", "check_in", False), ("in_session", "reschedule", False),
])
def test_appointment_moves(status, action, ok):
    if ok:
        check_appointment_move(AppointmentStatus(status), action)
    else:
        with pytest.raises(Conflict):
            check_appointment_move(AppointmentStatus(status), action)


def test_free_starts_skip_busy_slots_and_closing():
    opens, closes = HOURS.day_bounds(MONDAY)
    busy = {at(MONDAY, 9), at(MONDAY, 9, 15)}
    starts = free_starts(opens, closes, timedelta(hours=1), 15, busy)
    assert at(MONDAY, 8) in starts               # ends as the busy slot begins
    assert at(MONDAY, 8, 15) not in starts       # would run into 09:00
    assert at(MONDAY, 9, 15) not in starts
    assert at(MONDAY, 9, 30) in starts
    assert starts[-1] == at(MONDAY, 17)
    assert free_starts(opens, closes, timedelta(hours=1), 15, set(), not_before=at(MONDAY, 12))[0] == at(MONDAY, 12)


def test_rules_read_the_sessions_config_section():
    rules = Rules.from_config({"time_zone": "Europe/London", "opens": "09:30", "closes": 1080, "days": ["Mon", "sat"],
                               "min_hours_apart": 72, "vitals_thresholds": {"spo2_low": 90},
                               "route_minutes": {"iv_infusion": 75}, "late_cancellation_hours": 48})
    assert (rules.hours.time_zone, rules.hours.opens, rules.hours.closes) == ("Europe/London", time(9, 30), time(18))
    assert rules.hours.days == ("mon", "sat")
    assert rules.course.min_hours_apart == 72 and rules.course.induction_sessions == 6
    assert rules.vitals.spo2_low == 90 and rules.vitals.systolic_high == 180
    assert rules.slot_minutes_by_route == {"iv_infusion": 75}
    assert rules.late_cancellation_hours == 48
    assert Rules.from_config(None) == Rules()


@pytest.mark.parametrize("interval, due", [(14, date(2026, 12, 14)), (28, date(2026, 12, 28)), (1, date(2026, 12, 1))])
def test_maintenance_is_due_the_plan_interval_after_the_last_session(interval, due):
    assert next_maintenance_due(MONDAY, interval) == due


def test_a_course_across_the_spring_clock_change_keeps_48_hours():
    every_day = ClinicHours(days=("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
    friday = date(2027, 3, 12)   # clocks go forward on Sunday 14 March 2027
    starts = propose_course(at(friday, 9), 3, every_day, CourseRules(), timedelta(hours=1))
    local = [s.astimezone(every_day.zone) for s in starts]
    # Friday 09:00 EST to Sunday 09:00 EDT is only 47 hours: Monday instead.
    assert [m.strftime("%a %H:%M") for m in local] == ["Fri 09:00", "Mon 09:00", "Wed 09:00"]
    assert all(b - a >= timedelta(hours=48) for a, b in zip(starts, starts[1:]))


def test_a_course_with_no_minimum_spacing_still_takes_one_day_each():
    starts = propose_course(at(MONDAY, 9), 3, HOURS, CourseRules(min_hours_apart=0), timedelta(hours=1))
    assert [s.astimezone(HOURS.zone).strftime("%a") for s in starts] == ["Mon", "Tue", "Wed"]


# ---------------------------------------------------------- the check-in window

NY_HOURS = ClinicHours()
NY = ZoneInfo("America/New_York")


def ny(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=NY).astimezone(timezone.utc)


@pytest.mark.parametrize("checked_in_at, booked_at, words", [
    (ny(7, 8, 0), ny(1, 10), None),              # an hour early: opens
    (ny(7, 7, 59), ny(1, 10), "opens at 08:00"),  # a minute before the window
    (ny(7, 17, 30), ny(1, 10), None),             # late, but the same clinic day
    (ny(8, 0, 0), ny(1, 10), "closed at the end of that day"),
    (ny(4, 9, 0), ny(1, 10), "opens at 08:00 on Mon 7 Dec"),   # days ahead
    (ny(7, 8, 40), ny(7, 8, 45), "earlier than its booking"),  # a walk-in charted before it was booked
    (ny(7, 8, 50), ny(7, 8, 45), None),
])
def test_check_in_belongs_to_the_appointment_day(checked_in_at, booked_at, words):
    starts_at = ny(7, 9)
    if words is None:
        check_check_in_time(checked_in_at, starts_at, booked_at, NY_HOURS)
    else:
        with pytest.raises(Conflict, match=words) as caught:
            check_check_in_time(checked_in_at, starts_at, booked_at, NY_HOURS)
        assert "the appointment is at 09:00 on Mon 7 Dec 2026 (America/New_York)" in caught.value.message
        assert caught.value.details["starts_at"] == "2026-12-07T14:00:00Z"


def test_the_window_never_reaches_into_the_day_before():
    opens, closes = check_in_window(ny(7, 0, 30), ny(1, 10), NY_HOURS, timedelta(minutes=60))
    assert (opens, closes) == (ny(7, 0, 0), ny(8, 0, 0))


def test_the_early_window_comes_from_config():
    assert Rules.from_config({"check_in_early_minutes": 90}).check_in_early == timedelta(minutes=90)
    assert Rules.from_config({}).check_in_early == timedelta(minutes=60)

"""When a plan's self-report schedule makes a form due: before each
induction session, weekly in maintenance, the day after each session."""
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from services.sessions import domain
from services.sessions.self_report_schedule import (
    DEFAULT_SCHEDULE, ScheduleRules, after_session, after_session_due_at, before_induction, schedule_or_default,
    weekly_in_maintenance,
)

UTC = timezone.utc
NEW_YORK = ZoneInfo("America/New_York")
STARTS = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)  # 10:00 in New York


def test_a_new_plan_gets_the_default_schedule_and_staff_can_turn_parts_off():
    assert schedule_or_default(None) == {"before_induction": ["phq9", "gad7"], "weekly_in_maintenance": ["phq9"],
                                         "after_session": ["check_in"]}
    assert schedule_or_default({"after_session": []})["after_session"] == []
    assert schedule_or_default({"before_induction": ["phq9", "gad7", "cssrs"]})["weekly_in_maintenance"] == ["phq9"]
    assert DEFAULT_SCHEDULE["before_induction"] == ["phq9", "gad7"], "the default is not changed by a plan"


def test_phq9_and_gad7_are_due_from_the_day_before_an_induction_appointment_until_it_starts():
    forms = ["phq9", "gad7"]
    assert before_induction("a1", STARTS, forms, STARTS - timedelta(hours=25)) == []
    due = before_induction("a1", STARTS, forms, STARTS - timedelta(hours=24))
    assert [(d.due_id, d.questionnaire) for d in due] == [("before:a1:phq9", "phq9"), ("before:a1:gad7", "gad7")]
    assert all(d.due_at == STARTS - timedelta(hours=24) for d in due)
    # Booked late: still sent the morning of, until the start.
    assert len(before_induction("a1", STARTS, forms, STARTS - timedelta(hours=2))) == 2
    assert before_induction("a1", STARTS, forms, STARTS) == []


def test_the_lead_time_is_configurable():
    rules = ScheduleRules(before_induction_hours=12)
    assert before_induction("a1", STARTS, ["phq9"], STARTS - timedelta(hours=13), rules) == []
    assert before_induction("a1", STARTS, ["phq9"], STARTS - timedelta(hours=12), rules)


def test_the_check_in_is_due_the_clinic_local_day_after_the_session_at_ten():
    # Discharged 23:30 New York time, already the next day in UTC.
    discharged = datetime(2026, 3, 11, 3, 30, tzinfo=UTC)
    due_at = after_session_due_at(discharged, NEW_YORK)
    assert due_at.astimezone(NEW_YORK).replace(tzinfo=None) == datetime(2026, 3, 11, 10, 0)
    assert after_session("s1", discharged, ["check_in"], due_at - timedelta(minutes=1), NEW_YORK) == []
    [due] = after_session("s1", discharged, ["check_in"], due_at, NEW_YORK)
    assert (due.due_id, due.questionnaire) == ("after:s1:check_in", "check_in")
    assert after_session("s1", discharged, ["check_in"], due_at + timedelta(hours=47), NEW_YORK)
    assert after_session("s1", discharged, ["check_in"], due_at + timedelta(hours=48), NEW_YORK) == [], \
        "a check-in days late is not sent"


def test_phq9_is_due_weekly_in_maintenance_one_week_at_a_time():
    since = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)
    assert weekly_in_maintenance("p1", since, ["phq9"], since + timedelta(days=6, hours=23)) == []
    [first] = weekly_in_maintenance("p1", since, ["phq9"], since + timedelta(days=7))
    assert first.due_id == "weekly:p1:1:phq9" and first.due_at == since + timedelta(days=7)
    [later] = weekly_in_maintenance("p1", since, ["phq9"], since + timedelta(days=23))
    assert later.due_id == "weekly:p1:3:phq9", "missed weeks are not sent as a backlog"


def test_an_occasion_turned_off_makes_nothing_due():
    assert before_induction("a1", STARTS, [], STARTS - timedelta(hours=1)) == []
    since = datetime(2026, 3, 1, tzinfo=UTC)
    assert weekly_in_maintenance("p1", since, [], since + timedelta(days=8)) == []


def test_the_schedule_rules_come_from_the_sessions_section():
    # 570: how YAML reads an unquoted 09:30 (sexagesimal minutes).
    rules = domain.Rules.from_config({"self_report": {"before_induction_hours": 18, "after_session_at": 570,
                                                      "after_session_window_hours": 24}}).self_report
    assert (rules.before_induction_hours, rules.after_session_at, rules.after_session_window_hours) == \
        (18, time(9, 30), 24)
    assert domain.Rules.from_config({"self_report": {"after_session_at": "09:30"}}).self_report.after_session_at \
        == time(9, 30)
    assert domain.Rules.from_config({}).self_report == ScheduleRules()

"""Course retention rules: when the front desk is asked to call, when a
task closes, and the monthly course report's arithmetic."""
from datetime import date, datetime, timedelta, timezone

import pytest

from common.errors import Conflict, ValidationFailed
from services.sessions import retention
from services.sessions.domain import Rules
from services.sessions.retention import CloseOutcome, CourseFacts, RetentionRules, TaskKind, TaskState

NOW = datetime(2026, 11, 27, 15, 0, tzinfo=timezone.utc)
RULES = RetentionRules()


@pytest.mark.parametrize("hours_ago, due", [
    (1, False),                  # still inside the window: the front desk may be booking it now
    (71.9, False),
    (72, True),
    (100, True),
    (72 + 30 * 24, True),        # the last day of the look-back
    (72 + 30 * 24 + 1, False),   # history from before the rule was switched on
])
def test_a_completed_session_is_looked_at_once_its_window_has_passed(hours_ago, due):
    assert retention.rebooking_check_due(NOW - timedelta(hours=hours_ago), NOW, RULES) is due


def test_the_window_is_configuration():
    rules = Rules.from_config({"retention_rebook_hours": "24"}).retention
    assert rules.rebook_hours == 24
    assert retention.rebooking_check_due(NOW - timedelta(hours=25), NOW, rules)
    assert Rules.from_config({}).retention == RetentionRules(72, 30)


@pytest.mark.parametrize("active, completed, later, task", [
    (True, False, False, True),     # nothing booked after it: call the patient
    (True, False, True, False),     # the next session is on the schedule
    (True, True, False, False),     # the course is done
    (False, False, False, False),   # the plan was stopped: stopped_after_first speaks for it
])
def test_no_next_booking(active, completed, later, task):
    assert retention.needs_rebooking_task(plan_active=active, course_completed=completed,
                                          later_booking=later) is task


@pytest.mark.parametrize("old, new, given, done, task", [
    ("active", "closed", 1, False, True),
    ("active", "closed", 0, False, False),    # never started: not a course that lapsed
    ("active", "closed", 2, False, False),
    ("closed", "closed", 1, False, False),
    ("active", "active", 1, False, False),
    ("active", "closed", 1, True, False),     # a one-session course that was completed
])
def test_stopped_after_first(old, new, given, done, task):
    assert retention.stopped_after_first(old_status=old, new_status=new, completed_inductions=given,
                                         course_completed=done) is task


def test_one_open_task_per_patient_kind_and_plan():
    assert retention.open_key("p1", TaskKind.NO_SHOW, "plan1") == retention.open_key("p1", "no_show", "plan1")
    keys = {retention.open_key("p1", TaskKind.NO_SHOW, "plan1"), retention.open_key("p1", TaskKind.NO_SHOW, "plan2"),
            retention.open_key("p1", TaskKind.NO_NEXT_BOOKING, "plan1"),
            retention.open_key("p2", TaskKind.NO_SHOW, "plan1"), retention.open_key("p2", TaskKind.NO_SHOW, None)}
    assert len(keys) == 5
    assert len(retention.open_key("0" * 36, TaskKind.PREVISIT_UNCONFIRMED, "1" * 36)) <= 120


@pytest.mark.parametrize("kind, task_plan, booked_plan, closes", [
    (TaskKind.NO_NEXT_BOOKING, "a", "a", True),
    (TaskKind.NO_NEXT_BOOKING, "a", "b", False),
    (TaskKind.NO_SHOW, "a", "a", True),
    (TaskKind.STOPPED_AFTER_FIRST, "a", "b", True),   # a new plan restarts a stopped course
    (TaskKind.PREVISIT_UNCONFIRMED, "a", "a", False),  # a booking does not confirm a visit
])
def test_what_a_booking_closes(kind, task_plan, booked_plan, closes):
    assert retention.closes_on_booking(kind, task_plan, booked_plan) is closes


def test_closing_needs_an_open_task_and_a_reason_to_decline():
    retention.check_close(TaskState.OPEN, CloseOutcome.BOOKED, None)
    retention.check_close(TaskState.OPEN, CloseOutcome.DECLINED, "moving away")
    with pytest.raises(ValidationFailed) as caught:
        retention.check_close(TaskState.OPEN, CloseOutcome.DECLINED, "  ")
    assert caught.value.details[0]["field"] == "reason"
    with pytest.raises(Conflict, match="already closed"):
        retention.check_close(TaskState.CLOSED, CloseOutcome.BOOKED, None)


@pytest.mark.parametrize("answer, confirmed", [("confirmed", True), ("declined", False), ("unrecognised", False)])
def test_only_a_confirmed_reply_ticks_the_checklist(answer, confirmed):
    assert retention.previsit_confirmed(answer) is confirmed


def test_the_latest_reply_received_is_the_patients_answer():
    early, late = NOW - timedelta(hours=2), NOW
    assert retention.standing_previsit_answer([]) is None
    assert retention.standing_previsit_answer([(late, "r-1", "confirmed"), (early, "r-2", "declined")]) == "confirmed"
    assert retention.standing_previsit_answer([(early, "r-1", "confirmed"), (late, "r-2", "declined")]) == "declined"
    # Two texts in the same second: the reply id decides, the same way every time.
    assert retention.standing_previsit_answer([(late, "r-b", "confirmed"), (late, "r-a", "declined")]) == "confirmed"


# ------------------------------------------------------------------ report


def test_months():
    assert retention.parse_month("2026-02", "from") == date(2026, 2, 1)
    assert retention.months_between(date(2025, 11, 1), date(2026, 2, 1)) == ["2025-11", "2025-12", "2026-01",
                                                                              "2026-02"]
    assert retention.months_before(date(2026, 3, 1), 11) == date(2025, 4, 1)
    assert retention.months_before(date(2026, 12, 1), 11) == date(2026, 1, 1)
    for bad in ("2026-13", "2026-1", "26-01", "2026/01", "", None, "2026-01-01"):
        with pytest.raises(ValidationFailed):
            retention.parse_month(bad, "from")
    with pytest.raises(ValidationFailed) as caught:
        retention.months_between(date(2026, 2, 1), date(2026, 1, 1))
    assert caught.value.details[0]["field"] == "to"
    with pytest.raises(ValidationFailed):
        retention.months_between(date(2020, 1, 1), date(2026, 1, 1))


@pytest.mark.parametrize("values, middle", [([], None), ([10], 10.0), ([14, 10, 20], 14.0), ([10, 13], 11.5)])
def test_median(values, middle):
    assert retention.median(values) == middle


def course(started, completed=None, stopped=None, baseline=None, scores=()):
    return CourseFacts(started_on=started, completed_on=completed, stopped_after_first_on=stopped,
                       intake_baseline=baseline, scores=tuple(scores))


def test_the_monthly_report():
    courses = [
        # Started in October, completed in November in 18 days: a responder in remission.
        course(date(2026, 10, 20), date(2026, 11, 7), baseline=20, scores=[(date(2026, 11, 9), 4)]),
        # Started and completed in November in 16 days: 20 → 12 is no response, no remission.
        course(date(2026, 11, 2), date(2026, 11, 18), baseline=20, scores=[(date(2026, 11, 18), 12)]),
        # No intake baseline: the first score is the baseline (18 → 8, a response).
        course(date(2026, 11, 3), date(2026, 11, 24),
               scores=[(date(2026, 11, 3), 18), (date(2026, 11, 24), 8)]),
        # Stopped after one in November.
        course(date(2026, 11, 10), stopped=date(2026, 11, 20)),
        # Completed without any score: counted, no outcome.
        course(date(2026, 11, 4), date(2026, 11, 25)),
        # Outside the range.
        course(date(2026, 8, 1), date(2026, 8, 20), baseline=20, scores=[(date(2026, 8, 20), 2)]),
    ]
    october, november, december = retention.monthly_report(courses, ["2026-10", "2026-11", "2026-12"])
    assert october == {"month": "2026-10", "courses_started": 1, "courses_completed": 0, "stopped_after_first": 0,
                       "median_days_to_complete": None, "with_phq9_change": 0, "response_rate": None,
                       "with_final_phq9": 0, "remission_rate": None}
    assert november["courses_started"] == 4
    assert november["courses_completed"] == 4
    assert november["stopped_after_first"] == 1
    assert november["median_days_to_complete"] == 19.5      # of 18, 16, 21, 21
    assert november["with_phq9_change"] == 3
    assert november["response_rate"] == 0.667               # two of three
    assert (november["with_final_phq9"], november["remission_rate"]) == (3, 0.333)
    # An empty month is zeros and no rates, never a division by zero.
    assert december["courses_started"] == 0 and december["response_rate"] is None
    assert december["median_days_to_complete"] is None


def test_a_score_long_after_the_course_is_not_its_outcome():
    late = course(date(2026, 11, 2), date(2026, 11, 18), baseline=20,
                  scores=[(date(2026, 11, 18), 12), (date(2027, 1, 20), 3)])
    outcome = retention.outcome_at_course_end(late)
    assert (outcome.final_phq9, outcome.response, outcome.remission) == (12, False, False)

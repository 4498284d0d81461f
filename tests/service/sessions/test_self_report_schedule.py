"""The self-report schedule on a treatment plan, through sessions'
entrypoints: the default a new plan gets, staff turning parts off, and the
timer announcing each due form once (``self_report.due``)."""
from datetime import datetime, timedelta, timezone

import pytest
from nameko.testing.services import entrypoint_hook

from tests.support.sessions import CHECKLIST, IV_PLAN, clinic_monday, clinic_time, discharge, iso

MONDAY = clinic_monday()


@pytest.fixture
def plan(call, patient_id):
    return call("create_plan", {**IV_PLAN, "patient_id": patient_id})


@pytest.fixture
def announce(sessions):
    def announce():
        with entrypoint_hook(sessions, "announce_due_self_reports") as run:
            return run()
    return announce


def book(call, plan, chairs, clinicians, day=MONDAY):
    return call("book_appointment", {"plan_id": plan["plan_id"], "starts_at": iso(clinic_time(day, 9)),
                                     "chair_id": chairs[0], "clinician_id": clinicians[0]})


def test_a_new_plan_has_the_default_schedule_and_staff_can_turn_parts_off(call, plan, patient_id):
    assert plan["self_report_schedule"] == {"before_induction": ["phq9", "gad7"],
                                            "weekly_in_maintenance": ["phq9"], "after_session": ["check_in"]}
    changed = call("update_plan", plan["plan_id"], {"self_report_schedule": {"after_session": []}})
    assert changed["self_report_schedule"]["after_session"] == []
    assert changed["self_report_schedule"]["before_induction"] == ["phq9", "gad7"]
    assert call("update_plan", plan["plan_id"], {"self_report_schedule": None})["self_report_schedule"] is None
    chosen = call("create_plan", {**IV_PLAN, "patient_id": patient_id,
                                  "self_report_schedule": {"before_induction": ["phq9", "cssrs", "phq9"]}})
    assert chosen["self_report_schedule"]["before_induction"] == ["phq9", "cssrs"]


def test_an_unknown_form_in_the_schedule_is_refused(call, patient_id):
    from common.errors import ValidationFailed
    with pytest.raises(ValidationFailed, match="self_report_schedule"):
        call("create_plan", {**IV_PLAN, "patient_id": patient_id,
                             "self_report_schedule": {"after_session": ["pcl5"]}})


def test_forms_before_an_induction_session_are_announced_once(call, plan, chairs, clinicians, execute, announce,
                                                              events, count):
    events.listen("sessions")
    appointment = book(call, plan, chairs, clinicians)
    assert announce() == 0, "a week ahead: nothing due yet"
    execute("UPDATE appointments SET starts_at = :at WHERE appointment_id = :id",
            at=datetime.now(timezone.utc) + timedelta(hours=3), id=appointment["appointment_id"])
    assert announce() == 2
    assert announce() == 0, "already announced"
    due = [events.wait_for("self_report.due", count=n)["data"] for n in (1, 2)]
    assert sorted(d["questionnaire"] for d in due) == ["gad7", "phq9"]
    assert {d["due_id"] for d in due} == {f"before:{appointment['appointment_id']}:phq9",
                                          f"before:{appointment['appointment_id']}:gad7"}
    assert set(due[0]) == {"patient_id", "plan_id", "due_id", "questionnaire"}
    assert count("self_report_dues") == 2


def test_a_plan_without_a_schedule_sends_nothing(call, plan, chairs, clinicians, execute, announce):
    call("update_plan", plan["plan_id"], {"self_report_schedule": None})
    appointment = book(call, plan, chairs, clinicians)
    execute("UPDATE appointments SET starts_at = :at WHERE appointment_id = :id",
            at=datetime.now(timezone.utc) + timedelta(hours=3), id=appointment["appointment_id"])
    assert announce() == 0


def test_the_check_in_is_announced_the_day_after_a_completed_session(call, plan, chairs, clinicians, arrived,
                                                                     execute, announce, events):
    events.listen("sessions")
    appointment = book(call, plan, chairs, clinicians)
    sid = call("check_in", arrived(appointment["appointment_id"]), CHECKLIST)["session_id"]
    call("start_session", sid, {"lot_number": "LOT-1"})
    call("record_vitals", sid, {"systolic": 124, "diastolic": 80, "heart_rate": 74, "spo2": 98})
    call("complete_session", sid, discharge())
    # 36 hours back puts "the day after, at 10:00" behind us, whatever the hour now.
    execute("UPDATE session_records SET discharged_at = :at WHERE session_id = :id",
            at=datetime.now(timezone.utc) - timedelta(hours=36), id=sid)
    assert announce() == 1
    due = events.wait_for("self_report.due")["data"]
    assert (due["due_id"], due["questionnaire"]) == (f"after:{sid}:check_in", "check_in")


def test_phq9_is_announced_weekly_in_maintenance(call, plan, execute, announce, events):
    events.listen("sessions")
    execute("UPDATE treatment_plans SET course_completed_at = :at WHERE plan_id = :id",
            at=datetime.now(timezone.utc) - timedelta(days=8), id=plan["plan_id"])
    assert announce() == 1
    assert announce() == 0
    due = events.wait_for("self_report.due")["data"]
    assert (due["due_id"], due["questionnaire"]) == (f"weekly:{plan['plan_id']}:1:phq9", "phq9")


def test_two_replicas_running_the_timer_announce_each_form_once(start_service, call, plan, chairs, clinicians,
                                                                execute, events, count):
    import eventlet
    from services.sessions.service import SessionsService
    from tests.support.billing import wait_until

    events.listen("sessions")
    appointments = [book(call, plan, chairs, clinicians, clinic_monday(weeks)) for weeks in (2, 3, 4)]
    soon = datetime.now(timezone.utc) + timedelta(hours=3)
    for n, appointment in enumerate(appointments):
        execute("UPDATE appointments SET starts_at = :at WHERE appointment_id = :id",
                at=soon + timedelta(minutes=n), id=appointment["appointment_id"])
    for _ in range(2):
        start_service(SessionsService, SESSIONS={"self_report_scan_seconds": 0.05})
    wait_until(lambda: len(events.events("self_report.due")) >= 6, timeout=20)
    eventlet.sleep(1)  # many more rounds of both timers
    due_ids = [e["data"]["due_id"] for e in events.events("self_report.due")]
    assert len(due_ids) == len(set(due_ids)) == 6
    assert count("self_report_dues") == 6

"""Course retention through the entrypoints: front-desk tasks opened by a
no-show, by the rebooking timer, by a course stopped after one session and
by a pre-visit reply; closed by a booking or by staff; and the monthly
course report."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from nameko.testing.services import entrypoint_hook, entrypoint_waiter

from common.errors import Conflict, NotFound, PreconditionFailed, ValidationFailed
from common.etag import etag
from tests.support.billing import wait_until
from tests.support.events import publish_event
from tests.support.sessions import (
    CHECKLIST, CLINIC_ZONE, FRONT_DESK, IV_PLAN, clinic_monday, clinic_time, discharge, iso,
)

MONDAY = clinic_monday()


@pytest.fixture
def plan(call, patient_id):
    return call("create_plan", {**IV_PLAN, "patient_id": patient_id})


@pytest.fixture
def book(call, chairs, clinicians):
    def book(plan, day_offset=0, hour=9):
        return call("book_appointment", {"plan_id": plan["plan_id"], "chair_id": chairs[0],
                                         "clinician_id": clinicians[0],
                                         "starts_at": iso(clinic_time(MONDAY + timedelta(days=day_offset), hour))},
                    actor=FRONT_DESK)
    return book


@pytest.fixture
def give_session(call, arrived):
    """Check in, dose and discharge the appointment: a completed session."""
    def give(appointment):
        sid = call("check_in", arrived(appointment["appointment_id"]), CHECKLIST)["session_id"]
        call("start_session", sid, {"lot_number": "LOT-1"})
        call("record_vitals", sid, {"systolic": 124, "diastolic": 80, "heart_rate": 74, "spo2": 98})
        return call("complete_session", sid, discharge())
    return give


@pytest.fixture
def scan(sessions):
    def scan():
        with entrypoint_hook(sessions, "find_courses_without_next_booking") as hook:
            return hook()
    return scan


@pytest.fixture
def reply(sessions, clinic_config):
    """Publish notifications' previsit.reply_received and wait for sessions."""
    def reply(appointment, answer, reply_id=None, received_at=None):
        data = {"reply_id": reply_id or str(uuid.uuid4()), "appointment_id": appointment["appointment_id"],
                "patient_id": appointment["patient_id"], "answer": answer,
                "received_at": received_at or iso(datetime.now(timezone.utc))}
        with entrypoint_waiter(sessions, "on_previsit_reply", timeout=10):
            publish_event(clinic_config["AMQP_URI"], "notifications", "previsit.reply_received", data)
        return data
    return reply


def tasks(call, **filters):
    return call("list_front_desk_tasks", **filters)["items"]


def test_a_no_show_opens_a_task_at_once_and_the_next_booking_closes_it(call, plan, book, arrived, events, count):
    events.listen("sessions")
    first = book(plan)
    arrived(first["appointment_id"], datetime.now(timezone.utc) - timedelta(hours=1))
    call("mark_no_show", first["appointment_id"], actor=FRONT_DESK)
    [task] = tasks(call)
    assert (task["kind"], task["state"], task["appointment_id"], task["mrn"]) == (
        "no_show", "open", first["appointment_id"], "MRN0000042")
    opened = events.wait_for("front_desk_task.opened")["data"]
    assert set(opened) == {"task_id", "kind", "patient_id", "plan_id", "appointment_id", "opened_at"}
    assert (opened["task_id"], opened["kind"]) == (task["task_id"], "no_show")

    book(plan, day_offset=2)
    closed = call("get_front_desk_task", task["task_id"])
    assert (closed["state"], closed["close_outcome"], closed["closed_by"]) == ("closed", "booked", FRONT_DESK)
    assert events.wait_for("front_desk_task.closed")["data"]["outcome"] == "booked"
    assert tasks(call) == [] and len(tasks(call, state="closed")) == 1
    assert count("record_access", "action = 'front_desk_task_read'") == 1


def test_the_timer_opens_one_task_when_nothing_is_booked_within_the_window(
        call, plan, book, give_session, scan, execute, events, count):
    events.listen("sessions")
    first = book(plan)
    give_session(first)
    assert scan() == 0 and tasks(call) == []          # still inside the 72 hours
    execute("UPDATE session_records SET discharged_at = :at", at=datetime.now(timezone.utc) - timedelta(hours=73))
    assert scan() == 1
    assert scan() == 0                                # each completed session is looked at once
    [task] = tasks(call, kind="no_next_booking")
    assert task["appointment_id"] == first["appointment_id"]
    assert "72 h" in task["reason"] and task["patient_name"] is None
    events.wait_for("front_desk_task.opened")
    # Even were it looked at again (another replica's read), the open task stays single.
    execute("UPDATE appointments SET retention_checked_at = NULL")
    assert scan() == 0 and count("front_desk_tasks") == 1

    book(plan, day_offset=3)
    assert tasks(call) == []
    assert call("get_front_desk_task", task["task_id"])["close_outcome"] == "booked"


def test_a_booked_next_session_or_a_completed_course_opens_nothing(call, patient_id, book, give_session, scan,
                                                                   execute):
    booked_ahead = call("create_plan", {**IV_PLAN, "patient_id": patient_id})
    first, _ = book(booked_ahead), book(booked_ahead, day_offset=2)
    give_session(first)
    execute("UPDATE session_records SET discharged_at = :at", at=datetime.now(timezone.utc) - timedelta(hours=80))
    assert scan() == 0
    assert call("list_front_desk_tasks", state="")["total"] == 0


def test_a_course_stopped_after_its_first_session(call, plan, book, give_session):
    give_session(book(plan))
    etag_of_plan = etag(call("get_plan", plan["plan_id"]))
    call("update_plan", plan["plan_id"], {"status": "closed"}, if_match=[etag_of_plan])
    [task] = tasks(call, kind="stopped_after_first")
    assert (task["plan_id"], task["appointment_id"]) == (plan["plan_id"], None)
    # A new plan for the patient restarts the course: its booking closes the task.
    again = call("create_plan", {**IV_PLAN, "patient_id": plan["patient_id"]})
    book(again, day_offset=7)
    assert call("get_front_desk_task", task["task_id"])["close_outcome"] == "booked"


def test_a_plan_closed_before_any_session_opens_nothing(call, plan):
    call("update_plan", plan["plan_id"], {"status": "closed"})
    assert call("list_front_desk_tasks", state="")["total"] == 0


def test_a_confirmed_reply_is_shown_at_check_in_and_others_open_a_task(call, plan, book, reply, arrived, count):
    appointment = book(plan)
    assert call("get_appointment", appointment["appointment_id"])["previsit"]["confirmed"] is False
    answered = reply(appointment, "confirmed", received_at="2026-11-26T20:15:00Z")
    previsit = call("get_appointment", appointment["appointment_id"])["previsit"]
    assert previsit == {"confirmed": True, "fasting_confirmed": True, "escort_confirmed": True,
                        "confirmed_at": "2026-11-26T20:15:00Z",
                        "note": "confirmed by patient reply at 2026-11-26T20:15:00Z"}
    day = call("get_schedule", MONDAY.isoformat())["items"][0]
    assert day["previsit"]["confirmed"] is True
    session = call("check_in", arrived(appointment["appointment_id"]), CHECKLIST, actor=FRONT_DESK)
    assert session["checklist"]["previsit"]["note"] == "confirmed by patient reply at 2026-11-26T20:15:00Z"
    # The same reply again (another event id) changes nothing.
    reply(appointment, "declined", reply_id=answered["reply_id"])
    assert count("previsit_replies") == 1 and tasks(call) == []

    other = book(plan, day_offset=2)
    reply(other, "declined")
    reply(other, "unrecognised")                      # one open task per patient, kind and plan
    [task] = tasks(call, kind="previsit_unconfirmed")
    assert (task["appointment_id"], task["reason"]) == (other["appointment_id"],
                                                        "the patient declined the pre-visit message")
    assert count("front_desk_tasks") == 1


def test_a_reply_for_an_appointment_sessions_does_not_hold_changes_nothing(call, reply, count):
    reply({"appointment_id": str(uuid.uuid4()), "patient_id": str(uuid.uuid4())}, "declined")
    assert count("front_desk_tasks") == 0


def test_staff_close_a_task_with_the_outcome(call, plan, book, reply, events):
    reply(book(plan), "declined")
    [task] = tasks(call)
    with pytest.raises(ValidationFailed) as caught:
        call("close_front_desk_task", task["task_id"], {"outcome": "declined"}, actor=FRONT_DESK)
    assert caught.value.details[0]["field"] == "reason"
    with pytest.raises(ValidationFailed):
        call("close_front_desk_task", task["task_id"], {"outcome": "maybe"}, actor=FRONT_DESK)
    with pytest.raises(PreconditionFailed):
        call("close_front_desk_task", task["task_id"], {"outcome": "booked"}, if_match=['"stale"'],
             actor=FRONT_DESK)
    events.listen("sessions")
    current = etag(call("get_front_desk_task", task["task_id"]))
    closed = call("close_front_desk_task", task["task_id"], {"outcome": "declined", "reason": "travelling"},
                  if_match=[current], actor=FRONT_DESK)
    assert (closed["state"], closed["close_outcome"], closed["close_reason"]) == ("closed", "declined", "travelling")
    data = events.wait_for("front_desk_task.closed")["data"]
    assert data["outcome"] == "declined" and "travelling" not in str(data)
    with pytest.raises(Conflict, match="already closed"):
        call("close_front_desk_task", task["task_id"], {"outcome": "booked"}, actor=FRONT_DESK)
    with pytest.raises(NotFound):
        call("get_front_desk_task", str(uuid.uuid4()))


def test_the_list_filters_and_pages(call, patient_id, book, reply, deliver):
    from tests.support.sessions import approval_data

    other = approval_data()
    deliver("intake.approved", other, "on_intake_approved")
    for pid in (patient_id, other["patient_id"]):
        reply(book(call("create_plan", {**IV_PLAN, "patient_id": pid}), hour=9 if pid == patient_id else 11),
              "declined")
    page = call("list_front_desk_tasks", limit=1)
    assert (page["total"], len(page["items"]), page["limit"]) == (2, 1, 1)
    # The task listed is a look at its patient; the one not on the page is not.
    listed = page["items"][0]["patient_id"]
    unlisted = other["patient_id"] if listed == patient_id else patient_id
    assert [e["action"] for e in call("list_record_access", listed)].count("front_desk_task_listed") == 1
    assert "front_desk_task_listed" not in [e["action"] for e in call("list_record_access", unlisted)]
    assert call("list_front_desk_tasks", patient_id=patient_id)["total"] == 1
    assert call("list_front_desk_tasks", kind="no_show")["total"] == 0
    for bad in ({"kind": "call_me"}, {"state": "pending"}, {"limit": 0}):
        with pytest.raises(ValidationFailed):
            call("list_front_desk_tasks", **bad)


def test_the_monthly_report_counts_a_completed_course_and_its_outcome(call, patient_id, book, give_session):
    one_session = call("create_plan", {**IV_PLAN, "patient_id": patient_id, "induction_sessions": 1})
    give_session(book(one_session))
    call("record_phq9", one_session["plan_id"], {"total": 4})      # from intake's 20: response and remission
    this_month = datetime.now(CLINIC_ZONE).strftime("%Y-%m")
    report = call("get_retention_report", this_month, this_month)
    assert report["from"] == report["to"] == this_month
    [row] = report["months"]
    assert (row["courses_started"], row["courses_completed"], row["median_days_to_complete"]) == (1, 1, 0.0)
    assert (row["response_rate"], row["remission_rate"]) == (1.0, 1.0)
    assert patient_id not in str(report)
    assert len(call("get_retention_report")["months"]) == 12
    with pytest.raises(ValidationFailed):
        call("get_retention_report", "2026-13", None)


def test_two_replicas_scanning_at_once_open_each_task_once(call, patient_id, book, give_session, execute, sessions,
                                                          start_service, events, count):
    import eventlet

    from services.sessions.service import SessionsService

    for day in (0, 2):
        give_session(book(call("create_plan", {**IV_PLAN, "patient_id": patient_id}), day_offset=day))
    execute("UPDATE session_records SET discharged_at = :at", at=datetime.now(timezone.utc) - timedelta(hours=73))
    events.listen("sessions")
    replica = start_service(SessionsService)

    def scan(container):
        with entrypoint_hook(container, "find_courses_without_next_booking") as hook:
            hook()

    # Concurrent hooks on one container all return when its first worker
    # does, so neither what they return nor their return says the scans are
    # over: the records do, once the scan that claimed the rows commits.
    for run in [eventlet.spawn(scan, container) for container in (sessions, replica, sessions, replica)]:
        run.wait()
    wait_until(lambda: count("appointments", "retention_checked_at IS NOT NULL") == 2)
    assert count("front_desk_tasks", "kind = 'no_next_booking' AND state = 'open'") == 2
    events.wait_for("front_desk_task.opened", count=2)
    eventlet.sleep(0.5)  # room for a third event to show up: none may
    assert len(events.events("front_desk_task.opened")) == 2


def test_a_later_yes_closes_the_previsit_task_as_confirmed(call, plan, book, reply, events, count):
    appointment, other = book(plan), book(plan, day_offset=2)
    reply(appointment, "declined", received_at="2026-11-26T18:00:00Z")
    [task] = tasks(call, kind="previsit_unconfirmed")
    events.listen("sessions")
    reply(other, "confirmed")                         # another appointment's YES answers nothing here
    assert [t["task_id"] for t in tasks(call)] == [task["task_id"]]
    reply(appointment, "confirmed", received_at="2026-11-26T19:30:00Z")
    assert tasks(call) == []
    closed = call("get_front_desk_task", task["task_id"])
    assert (closed["state"], closed["close_outcome"], closed["closed_by"]) == ("closed", "confirmed", "system")
    data = events.wait_for("front_desk_task.closed")["data"]
    assert (data["task_id"], data["outcome"], data["appointment_id"]) == (
        task["task_id"], "confirmed", appointment["appointment_id"])
    assert call("get_appointment", appointment["appointment_id"])["previsit"]["confirmed"] is True
    # The patient changes their mind again: a new call to make.
    reply(appointment, "unrecognised", received_at="2026-11-26T20:00:00Z")
    assert count("front_desk_tasks", "state = 'open'") == 1


def test_the_latest_reply_received_decides_whatever_order_they_arrive_in(call, plan, book, reply, count):
    yes_later = book(plan)
    reply(yes_later, "confirmed", received_at="2026-11-26T19:30:00Z")
    reply(yes_later, "declined", received_at="2026-11-26T18:00:00Z")   # sent before the YES, taken after it
    assert tasks(call) == []
    no_later = book(plan, day_offset=2)
    reply(no_later, "declined", received_at="2026-11-27T18:00:00Z")
    reply(no_later, "confirmed", received_at="2026-11-27T17:00:00Z")   # an earlier YES answers nothing
    [task] = tasks(call)
    assert task["appointment_id"] == no_later["appointment_id"]
    assert count("front_desk_tasks") == 1


def test_staff_cannot_close_a_task_as_confirmed(call, plan, book, reply):
    reply(book(plan), "declined")
    [task] = tasks(call)
    with pytest.raises(ValidationFailed):
        call("close_front_desk_task", task["task_id"], {"outcome": "confirmed"}, actor=FRONT_DESK)

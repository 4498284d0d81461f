"""Booking, the induction course, moves, cancellations, no-shows, the day
view and free slots, through the entrypoints."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from common.errors import Conflict, NotFound, ValidationFailed
from tests.support.billing import concurrently
from tests.support.sessions import FRONT_DESK, IV_PLAN, clinic_monday, clinic_time, iso

MONDAY = clinic_monday()


@pytest.fixture
def plan(call, patient_id):
    return call("create_plan", {**IV_PLAN, "patient_id": patient_id})


def booking(plan, chair, clinician, hour=9, minute=0, day=MONDAY):
    return {"plan_id": plan["plan_id"], "starts_at": iso(clinic_time(day, hour, minute)), "chair_id": chair,
            "clinician_id": clinician}


def test_front_desk_books_and_the_event_carries_the_contract(call, plan, chairs, clinicians, events):
    events.listen("sessions")
    booked = call("book_appointment", booking(plan, chairs[0], clinicians[0]), actor=FRONT_DESK)
    assert (booked["kind"], booked["sequence"], booked["status"]) == ("induction", 1, "scheduled")
    assert booked["ends_at"] == iso(clinic_time(MONDAY, 10))  # IV: one hour
    data = events.wait_for("appointment.scheduled")["data"]
    assert set(data) == {"patient_id", "appointment_id", "plan_id", "kind", "sequence", "starts_at", "ends_at",
                         "route", "chair_id", "clinician_id", "course_id"}
    assert (data["starts_at"], data["route"], data["course_id"]) == (booked["starts_at"], "iv_infusion", None)


@pytest.mark.parametrize("overlap, who", [
    ((0, 1), "chair"),        # same chair, another clinician, another patient
    ((1, 0), "clinician"),
])
def test_no_double_booking_of_a_chair_or_clinician(call, plan, chairs, clinicians, deliver, overlap, who, count):
    from tests.support.sessions import approval_data

    call("book_appointment", booking(plan, chairs[0], clinicians[0]))
    other = approval_data()
    deliver("intake.approved", other, "on_intake_approved")
    other_plan = call("create_plan", {**IV_PLAN, "patient_id": other["patient_id"]})
    chair, clinician = chairs[overlap[0]], clinicians[overlap[1]]
    with pytest.raises(Conflict, match=f"double booking: the {who}") as caught:
        call("book_appointment", booking(other_plan, chair, clinician, hour=9, minute=45))
    assert caught.value.details["conflicts"][0]["resource_kind"] == who
    assert count("appointments") == 1
    # Right after the first visit ends is free.
    call("book_appointment", booking(other_plan, chair, clinician, hour=10))


def test_a_patient_is_not_booked_twice_nor_within_48_hours(call, plan, chairs, clinicians):
    call("book_appointment", booking(plan, chairs[0], clinicians[0]))
    with pytest.raises(Conflict, match="48 hours"):
        call("book_appointment", booking(plan, chairs[1], clinicians[1], hour=9))
    with pytest.raises(Conflict, match="48 hours"):
        call("book_appointment", booking(plan, chairs[1], clinicians[1], day=MONDAY + timedelta(days=1)))
    assert call("book_appointment", booking(plan, chairs[1], clinicians[1], day=MONDAY + timedelta(days=2)))


@pytest.mark.parametrize("change, field", [
    ({"starts_at": iso(clinic_time(MONDAY, 7, 30))}, "starts_at"),         # before opening
    ({"starts_at": iso(clinic_time(MONDAY, 17, 15))}, "starts_at"),        # runs past closing
    ({"starts_at": iso(clinic_time(MONDAY - timedelta(days=1), 10))}, "starts_at"),  # Sunday
    ({"starts_at": iso(clinic_time(MONDAY, 9, 10))}, "starts_at"),         # off the grid
    ({"starts_at": "2020-01-06T14:00:00Z"}, "starts_at"),                  # the past
    ({"starts_at": "2026-12-07T09:00:00"}, "starts_at"),                   # no offset
    ({"chair_id": "nope"}, "chair_id"),
    ({"clinician_id": None}, "clinician_id"),
    ({"room": "1"}, "room"),
])
def test_bad_bookings_name_the_field_and_write_nothing(call, plan, chairs, clinicians, change, field, count):
    with pytest.raises(ValidationFailed) as caught:
        call("book_appointment", {**booking(plan, chairs[0], clinicians[0]), **change})
    assert field in {e["field"] for e in caught.value.details}
    assert count("appointments") == 0 and count("resource_bookings") == 0
    assert count("outbox", "event_type <> 'plan.created'") == 0


def test_a_retry_with_the_same_idempotency_key_books_once(call, plan, chairs, clinicians, count):
    first = call("book_appointment", booking(plan, chairs[0], clinicians[0]), "key-1")
    again = call("book_appointment", booking(plan, chairs[0], clinicians[0]), "key-1")
    assert first == again
    assert count("appointments") == 1 and count("outbox", "event_type = 'appointment.scheduled'") == 1


def test_the_same_idempotency_key_with_another_booking_is_refused_naming_the_key(call, plan, chairs, clinicians,
                                                                                 count):
    call("book_appointment", booking(plan, chairs[0], clinicians[0]), "key-1")
    with pytest.raises(ValidationFailed, match="key-1") as caught:
        call("book_appointment", booking(plan, chairs[0], clinicians[0], day=MONDAY + timedelta(days=7)), "key-1")
    assert caught.value.details[0]["field"] == "idempotency_key"
    assert count("appointments") == 1


def test_racing_duplicates_of_a_booking_all_get_the_first_answer(sessions, plan, chairs, clinicians, count):
    raced = concurrently(sessions.config, "book_appointment",
                         [(booking(plan, chairs[0], clinicians[0]), "key-race")] * 4, service="sessions")
    assert all(isinstance(answer, dict) for answer in raced), raced
    assert len({answer["appointment_id"] for answer in raced}) == 1
    assert count("appointments") == 1 and count("outbox", "event_type = 'appointment.scheduled'") == 1


def test_the_whole_induction_course_is_proposed_then_booked_at_once(call, plan, chairs, clinicians, count):
    course = {"first_starts_at": iso(clinic_time(MONDAY, 9)), "chair_id": chairs[0], "clinician_id": clinicians[0]}
    proposal = call("propose_course", plan["plan_id"], course)
    assert proposal["bookable"] and len(proposal["appointments"]) == 6
    assert count("appointments") == 0
    booked = call("book_course", plan["plan_id"], course, "course-1")["appointments"]
    assert [a["sequence"] for a in booked] == [1, 2, 3, 4, 5, 6]
    assert [a["starts_at"] for a in booked] == [p["starts_at"] for p in proposal["appointments"]]
    assert call("book_course", plan["plan_id"], course, "course-1")["appointments"] == booked
    assert count("appointments") == 6
    with pytest.raises(Conflict, match="fully booked"):
        call("book_course", plan["plan_id"], course)


def test_a_booked_course_is_one_course_booked_event_listing_its_appointments(call, plan, chairs, clinicians,
                                                                             events, count):
    events.listen("sessions")
    course = {"first_starts_at": iso(clinic_time(MONDAY, 9)), "chair_id": chairs[0], "clinician_id": clinicians[0]}
    booked = call("book_course", plan["plan_id"], course, "course-2")
    announced = events.wait_for("course.booked")["data"]
    assert set(announced) == {"patient_id", "plan_id", "course_id", "route", "chair_id", "clinician_id",
                              "appointments"}
    assert announced["course_id"] == booked["course_id"]
    assert announced["appointments"] == [
        {"appointment_id": a["appointment_id"], "sequence": a["sequence"], "starts_at": a["starts_at"],
         "ends_at": a["ends_at"]} for a in booked["appointments"]]
    # Each appointment is still announced (reminders follow each one), marked as part of the course.
    scheduled = [events.wait_for("appointment.scheduled", count=n)["data"] for n in range(1, 7)]
    assert {s["course_id"] for s in scheduled} == {booked["course_id"]}
    # A retry with the same key announces nothing again.
    call("book_course", plan["plan_id"], course, "course-2")
    assert count("outbox", "event_type = 'course.booked'") == 1


def test_a_course_that_collides_books_nothing(call, plan, chairs, clinicians, deliver, count):
    from tests.support.sessions import approval_data

    other = approval_data()
    deliver("intake.approved", other, "on_intake_approved")
    other_plan = call("create_plan", {**IV_PLAN, "patient_id": other["patient_id"]})
    # The fourth session of the course would take this chair.
    call("book_appointment", booking(other_plan, chairs[0], clinicians[1], day=MONDAY + timedelta(days=7)))
    course = {"first_starts_at": iso(clinic_time(MONDAY, 9)), "chair_id": chairs[0], "clinician_id": clinicians[0]}
    proposal = call("propose_course", plan["plan_id"], course)
    assert [bool(p["conflicts"]) for p in proposal["appointments"]] == [False, False, False, True, False, False]
    with pytest.raises(Conflict):
        call("book_course", plan["plan_id"], course)
    assert count("appointments", f"plan_id = '{plan['plan_id']}'") == 0
    assert count("outbox", "event_type = 'course.booked'") == 0


def test_a_proposal_flags_spacing_and_refuses_unknown_resources_or_the_past(call, plan, chairs, clinicians):
    # A maintenance visit already booked on the Tuesday is under 48 h from Monday and Wednesday.
    call("book_appointment", {**booking(plan, chairs[1], clinicians[1], day=MONDAY + timedelta(days=1)),
                              "kind": "maintenance"})
    course = {"first_starts_at": iso(clinic_time(MONDAY, 9)), "chair_id": chairs[0], "clinician_id": clinicians[0]}
    proposal = call("propose_course", plan["plan_id"], course)
    assert not proposal["bookable"]
    assert [bool(p["conflicts"]) for p in proposal["appointments"]][:3] == [True, True, False]
    assert "48 hours" in proposal["appointments"][0]["conflicts"][0]["reason"]
    for change, field in (({"chair_id": clinicians[0]}, "chair_id"), ({"first_starts_at": "2020-01-06T14:00:00Z"},
                                                                      "first_starts_at")):
        with pytest.raises(ValidationFailed) as caught:
            call("propose_course", plan["plan_id"], {**course, **change})
        assert caught.value.details[0]["field"] == field


def test_reschedule_moves_the_hold(call, plan, chairs, clinicians, events, count):
    events.listen("sessions")
    booked = call("book_appointment", booking(plan, chairs[0], clinicians[0]))
    # Overlapping its own old slots is fine.
    moved = call("reschedule_appointment", booked["appointment_id"],
                 {"starts_at": iso(clinic_time(MONDAY, 9, 30)), "chair_id": chairs[1]})
    assert (moved["starts_at"], moved["chair_id"]) == (iso(clinic_time(MONDAY, 9, 30)), chairs[1])
    data = events.wait_for("appointment.rescheduled")["data"]
    assert (data["previous_starts_at"], data["starts_at"]) == (booked["starts_at"], moved["starts_at"])
    assert count("resource_bookings", f"resource_id = '{chairs[0]}'") == 0
    assert count("resource_bookings", f"resource_id = '{chairs[1]}'") == 4


def test_cancel_frees_the_slot_and_flags_late_cancellations(call, plan, chairs, clinicians, events, execute):
    events.listen("sessions")
    early = call("book_appointment", booking(plan, chairs[0], clinicians[0]), actor=FRONT_DESK)
    cancelled = call("cancel_appointment", early["appointment_id"], actor=FRONT_DESK)
    assert (cancelled["status"], cancelled["late_cancellation"]) == ("cancelled", False)
    with pytest.raises(Conflict):
        call("cancel_appointment", early["appointment_id"])
    late = call("book_appointment", booking(plan, chairs[0], clinicians[0]))  # the slot is free again
    execute("UPDATE appointments SET starts_at = :at WHERE appointment_id = :id",
            at=datetime.now(timezone.utc) + timedelta(hours=3), id=late["appointment_id"])
    assert call("cancel_appointment", late["appointment_id"])["late_cancellation"] is True
    events.wait_for("appointment.cancelled", count=2)
    data = [e["data"] for e in events.events("appointment.cancelled")]
    assert [(d["late"], d["cancelled_by_role"]) for d in data] == [(False, "front_desk"), (True, "clinician")]
    assert set(data[0]) == {"patient_id", "appointment_id", "starts_at", "cancelled_at", "late", "cancelled_by_role"}


def test_no_show_only_once_the_appointment_has_started(call, plan, chairs, clinicians, events, execute):
    events.listen("sessions")
    booked = call("book_appointment", booking(plan, chairs[0], clinicians[0]))
    with pytest.raises(Conflict, match="before it starts"):
        call("mark_no_show", booked["appointment_id"])
    execute("UPDATE appointments SET starts_at = :at WHERE appointment_id = :id",
            at=datetime.now(timezone.utc) - timedelta(minutes=20), id=booked["appointment_id"])
    assert call("mark_no_show", booked["appointment_id"])["status"] == "no_show"
    data = events.wait_for("appointment.no_show")["data"]
    assert set(data) == {"patient_id", "appointment_id", "starts_at", "route"}


def test_day_view_and_free_slots(call, plan, chairs, clinicians):
    call("book_appointment", booking(plan, chairs[0], clinicians[0], hour=9))
    day = call("get_schedule", MONDAY.isoformat())
    assert day["total"] == 1
    item = day["items"][0]
    assert (item["chair"], item["clinician"], item["mrn"]) == ("Chair 1", "Dr A", "MRN0000042")
    assert call("get_schedule", (MONDAY + timedelta(days=1)).isoformat())["total"] == 0
    free = call("find_free_slots", {"date": MONDAY.isoformat(), "route": "iv_infusion"})["slots"]
    at_nine = next(s for s in free if s["starts_at"] == iso(clinic_time(MONDAY, 9)))
    assert (at_nine["chair_ids"], at_nine["clinician_ids"]) == ([chairs[1]], [clinicians[1]])
    only_chair_one = call("find_free_slots", {"date": MONDAY.isoformat(), "route": "iv_infusion",
                                              "chair_id": chairs[0]})["slots"]
    starts = {s["starts_at"] for s in only_chair_one}
    assert iso(clinic_time(MONDAY, 8)) in starts and iso(clinic_time(MONDAY, 8, 15)) not in starts
    assert iso(clinic_time(MONDAY, 10)) in starts and iso(clinic_time(MONDAY, 17, 15)) not in starts
    sunday = (MONDAY - timedelta(days=1)).isoformat()
    assert call("find_free_slots", {"date": sunday, "route": "iv_infusion"})["slots"] == []
    with pytest.raises(ValidationFailed):
        call("get_schedule", "next monday")


def test_unknown_appointment(call):
    with pytest.raises(NotFound):
        call("cancel_appointment", str(uuid.uuid4()))


def test_the_database_refuses_a_double_booking_the_python_check_missed(call, plan, chairs, clinicians, deliver,
                                                                       count):
    """What a race looks like: both requests passed the friendly check
    before either committed. The slot table's unique key still holds."""
    from unittest import mock

    from services.sessions.service import SessionsService
    from tests.support.sessions import approval_data

    other = approval_data()
    deliver("intake.approved", other, "on_intake_approved")
    other_plan = call("create_plan", {**IV_PLAN, "patient_id": other["patient_id"]})
    call("book_appointment", booking(plan, chairs[0], clinicians[0]))
    with mock.patch.object(SessionsService, "_conflicts", return_value=[]):
        with pytest.raises(Conflict, match="by another request"):
            call("book_appointment", booking(other_plan, chairs[0], clinicians[1], minute=30))
    assert count("appointments") == 1
    assert count("outbox", "event_type = 'appointment.scheduled'") == 1

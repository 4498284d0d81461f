"""Booking an appointment or a course writes to the patient's record, so
each booking call is in the patient's access log naming what was booked,
a replay from its Idempotency-Key too."""
import pytest

from common.errors import Conflict
from tests.support.sessions import FRONT_DESK, IV_PLAN, clinic_monday, clinic_time, iso

MONDAY = clinic_monday()


def trail(call, patient_id, actions):
    return [(row["action"], row["actor"], row["subject_id"]) for row in call("list_record_access", patient_id)
            if row["action"] in actions]


def test_a_booked_appointment_and_its_replay_are_in_the_access_log(call, patient_id, chairs, clinicians):
    plan = call("create_plan", {**IV_PLAN, "patient_id": patient_id})
    booking = {"plan_id": plan["plan_id"], "starts_at": iso(clinic_time(MONDAY, 9)), "chair_id": chairs[0],
               "clinician_id": clinicians[0]}
    booked = call("book_appointment", booking, "book-1", actor=FRONT_DESK)
    assert call("book_appointment", booking, "book-1", actor=FRONT_DESK) == booked
    assert trail(call, patient_id, {"appointment_book", "appointment_book_replayed"}) == [
        (action, FRONT_DESK, booked["appointment_id"]) for action in ("appointment_book_replayed", "appointment_book")]


def test_a_booked_course_is_one_entry_naming_the_course_and_its_replay_another(call, patient_id, chairs,
                                                                              clinicians, count):
    plan = call("create_plan", {**IV_PLAN, "patient_id": patient_id})
    course = {"first_starts_at": iso(clinic_time(MONDAY, 9)), "chair_id": chairs[0], "clinician_id": clinicians[0]}
    booked = call("book_course", plan["plan_id"], course, "course-1", actor=FRONT_DESK)
    assert call("book_course", plan["plan_id"], course, "course-1", actor=FRONT_DESK) == booked
    assert trail(call, patient_id, {"course_book", "course_book_replayed", "appointment_book"}) == [
        (action, FRONT_DESK, booked["course_id"]) for action in ("course_book_replayed", "course_book")]
    assert count("appointments") == 6


def test_a_refused_booking_leaves_no_entry(call, patient_id, chairs, clinicians):
    plan = call("create_plan", {**IV_PLAN, "patient_id": patient_id})
    booking = {"plan_id": plan["plan_id"], "starts_at": iso(clinic_time(MONDAY, 9)), "chair_id": chairs[0],
               "clinician_id": clinicians[0]}
    call("book_appointment", booking)
    with pytest.raises(Conflict, match="48 hours"):
        call("book_appointment", {**booking, "chair_id": chairs[1], "clinician_id": clinicians[1]})
    assert len(trail(call, patient_id, {"appointment_book"})) == 1

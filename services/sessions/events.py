"""The events sessions publishes (exchange ``sessions.events``): one
contract per event type and version, used by sessions to emit and by every
consumer to read. Pure: nothing here touches the database or the broker.

No free text leaves sessions: abort notes, side-effect interventions and
addenda stay in its database."""
from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from common.events import EventData, EventPart, Instant


class SessionsEvent(EventData):
    producer = "sessions"


ROUTE = "iv_infusion, im_injection, intranasal_esketamine, oral_sublingual"
DRUG = "ketamine, esketamine"
DOSE = "mg, one decimal, rounded down: never above weight × mg/kg"


class PlanCreated(SessionsEvent):
    """A clinician creates a treatment plan."""

    type = "plan.created"

    patient_id: str
    plan_id: str
    route: str = Field(description=ROUTE)
    drug: str = Field(description=DRUG)
    induction_sessions: int
    mg_per_kg: float | None = Field(description="null for esketamine")
    max_dose_mg: float
    max_mg_per_kg: float | None = Field(description="null unless the plan caps the dose per kg")
    created_by: str


class AppointmentScheduled(SessionsEvent):
    """An appointment is booked (one per appointment of a booked course)."""

    type = "appointment.scheduled"

    patient_id: str
    appointment_id: str
    plan_id: str
    kind: Literal["induction", "maintenance"]
    sequence: int = Field(description="the appointment's number in its plan, in booking order; "
                                      "a cancelled one's number is not reused")
    starts_at: Instant
    ends_at: Instant
    route: str = Field(description=ROUTE)
    chair_id: str
    clinician_id: str
    course_id: str | None = Field(description="the course.booked it belongs to; null when booked alone")


class BookedAppointment(EventPart):
    appointment_id: str
    sequence: int
    starts_at: Instant
    ends_at: Instant


class CourseBooked(SessionsEvent):
    """A whole induction course is booked (``book_course``), after its
    ``appointment.scheduled`` events, in the same transaction."""

    type = "course.booked"

    patient_id: str
    plan_id: str
    course_id: str
    route: str = Field(description=ROUTE)
    chair_id: str
    clinician_id: str
    appointments: list[BookedAppointment] = Field(description="in time order")


class AppointmentRescheduled(SessionsEvent):
    """An appointment is moved."""

    type = "appointment.rescheduled"

    patient_id: str
    appointment_id: str
    previous_starts_at: Instant
    starts_at: Instant
    ends_at: Instant
    route: str = Field(description=ROUTE)
    chair_id: str
    clinician_id: str


class AppointmentCancelled(SessionsEvent):
    """An appointment is cancelled."""

    type = "appointment.cancelled"

    patient_id: str
    appointment_id: str
    starts_at: Instant
    cancelled_at: Instant
    late: bool = Field(description="under 24 h before the start (configuration)")
    cancelled_by_role: str = Field(description="front_desk, clinician, admin, or system")


class AppointmentNoShow(SessionsEvent):
    """The patient did not come."""

    type = "appointment.no_show"

    patient_id: str
    appointment_id: str
    starts_at: Instant
    route: str = Field(description=ROUTE)


class SessionCheckedIn(SessionsEvent):
    """The patient is checked in."""

    type = "session.checked_in"

    patient_id: str
    session_id: str
    appointment_id: str
    checked_in_at: Instant


class SessionStarted(SessionsEvent):
    """Dosing starts."""

    type = "session.started"

    patient_id: str
    session_id: str
    appointment_id: str
    route: str = Field(description=ROUTE)
    drug: str = Field(description=DRUG)
    dose_mg: float | None = Field(description=DOSE)
    started_at: Instant


class VitalsAlert(EventPart):
    code: str = Field(description="systolic_high, diastolic_high, heart_rate_high, heart_rate_low, spo2_low, "
                                  "respiratory_rate_low")
    measure: str
    value: int | float
    threshold: int | float


class SessionVitalsAlert(SessionsEvent):
    """A reading breaches a threshold (also a baseline reading at check-in)."""

    type = "session.vitals_alert"

    patient_id: str
    session_id: str
    mrn: str | None = Field(description="null if sessions has not yet seen the patient's approval")
    chair_id: str
    clinician_id: str
    recorded_at: Instant
    alerts: list[VitalsAlert]


class SessionCompleted(SessionsEvent):
    """The patient is discharged."""

    type = "session.completed"

    patient_id: str
    session_id: str
    appointment_id: str
    plan_id: str
    route: str = Field(description=ROUTE)
    drug: str = Field(description=DRUG)
    dose_mg: float | None = Field(description=DOSE)
    started_at: Instant = Field(description="start of dosing")
    ended_at: Instant = Field(description="stop of dosing (for IV, the infusion); discharge is later")
    duration_minutes: int = Field(ge=0, description="infusion time: what codes 96365/96366 bill")
    date_of_service: date = Field(description="the clinic-local day of started_at")
    clinician_id: str | None
    sequence: int = Field(description="treatments actually given in the plan so far, this one included")


class SessionAborted(SessionsEvent):
    """A session is aborted, before or after dosing."""

    type = "session.aborted"

    patient_id: str
    session_id: str
    appointment_id: str
    route: str = Field(description=ROUTE)
    drug: str = Field(description=DRUG)
    dose_mg: float | None = Field(description="null if never started")
    started_at: Instant | None = Field(description="null if never started")
    aborted_at: Instant
    duration_minutes: int | None = Field(ge=0, description="null if never started")
    reason_code: str = Field(description="vitals_alert, adverse_event, patient_request, checklist_incomplete, "
                                         "equipment_failure, eligibility, other")
    date_of_service: date = Field(description="the clinic-local day")


class CourseCompleted(SessionsEvent):
    """The last induction session of a plan completes."""

    type = "course.completed"

    patient_id: str
    plan_id: str
    sessions_completed: int
    baseline_phq9: int | None
    final_phq9: int | None
    change_percent: float | None = Field(description="negative for an improvement, e.g. -50.0")
    response: bool = Field(description="PHQ-9 down by 50 % or more")
    remission: bool = Field(description="final PHQ-9 below 5")


TASK_KIND = "no_next_booking, no_show, stopped_after_first, previsit_unconfirmed"


class FrontDeskTaskOpened(SessionsEvent):
    """The front desk is asked to call a patient: no next induction session
    booked in time after one was given, a no-show, a course stopped after its
    first session, or a pre-visit reply that did not confirm. One open task
    per patient, kind and plan."""

    type = "front_desk_task.opened"

    task_id: str
    kind: str = Field(description=TASK_KIND)
    patient_id: str
    plan_id: str | None
    appointment_id: str | None = Field(description="the appointment that opened it, if one did")
    opened_at: Instant


class FrontDeskTaskClosed(SessionsEvent):
    """A task is closed: the patient was booked again (by the booking itself
    or by staff), staff record that the patient declined (the reason stays
    in sessions), or the patient confirmed the pre-visit message after all
    (a later YES closes the ``previsit_unconfirmed`` task as ``confirmed``)."""

    type = "front_desk_task.closed"

    task_id: str
    kind: str = Field(description=TASK_KIND)
    patient_id: str
    plan_id: str | None
    appointment_id: str | None
    outcome: Literal["booked", "declined", "confirmed"]
    closed_at: Instant


class SelfReportDue(SessionsEvent):
    """The self-report schedule on a treatment plan says a form is due (before
    an induction session, weekly in maintenance, or the day after a session);
    intake sends the patient a link as if staff had asked. Once per
    ``due_id``, whichever replica's timer finds it."""

    type = "self_report.due"

    patient_id: str
    plan_id: str
    due_id: str = Field(description="stable for one form of one occasion, e.g. `before:<appointment_id>:phq9`; "
                                    "intake sends one link per due id")
    questionnaire: Literal["phq9", "gad7", "cssrs", "check_in"]

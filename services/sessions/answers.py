"""The shape of every answer the sessions service gives (resources,
eligibility, plans, appointments, session records, REMS forms and outcomes)
as output models, for the OpenAPI document and typed clients. The view
builders in ``schemas`` build these answers as plain dicts; the gateway's
document tests hold the two together."""
from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field

from common.views import ItemList, Page, View


class ResourceView(View):
    resource_id: str
    kind: str
    name: str
    active: bool


class ResourceList(ItemList[ResourceView]):
    pass


class EligibilityView(View):
    patient_id: str
    mrn: str | None
    intake_status: str | None
    treatment_consent: str | None
    weight_kg: float | None
    baseline_phq9: int | None
    time_zone: str | None
    rems_enrollment_id: str | None
    rems_enrolled_on: date | None
    eligible: bool


class SelfReportScheduleView(View):
    before_induction: list[str]
    weekly_in_maintenance: list[str]
    after_session: list[str]


class PlanView(View):
    plan_id: str
    patient_id: str
    route: str
    drug: str
    indication: str
    mg_per_kg: float | None
    fixed_dose_mg: float | None
    max_dose_mg: float | None
    max_mg_per_kg: float | None
    induction_sessions: int
    min_hours_apart: int
    maintenance_interval_days: int | None
    baseline_phq9: int | None
    self_report_schedule: SelfReportScheduleView | None = Field(
        description="forms sent by link per occasion; null sends none")
    status: str
    course_completed_at: datetime | None
    created_by: str | None
    created_at: datetime | None
    updated_by: str | None
    updated_at: datetime | None


class PlanList(ItemList[PlanView]):
    pass


class PreVisitView(View):
    """The pre-visit checklist as the patient confirmed it by SMS reply."""

    confirmed: bool
    fasting_confirmed: bool
    escort_confirmed: bool
    confirmed_at: datetime | None
    note: str | None = Field(description='"confirmed by patient reply at …", for the check-in screen')


class AppointmentView(View):
    appointment_id: str
    plan_id: str
    patient_id: str
    kind: str
    sequence: int | None
    route: str
    starts_at: datetime
    ends_at: datetime
    chair_id: str
    clinician_id: str
    status: str
    cancelled_at: datetime | None
    late_cancellation: bool | None
    cancelled_by_role: str | None
    previsit: PreVisitView


class AppointmentList(ItemList[AppointmentView]):
    pass


class ScheduledAppointmentView(AppointmentView):
    """An appointment in the day view, with who and where by name."""

    mrn: str | None
    patient_name: str | None
    chair: str | None
    clinician: str | None
    session_id: str | None = Field(default=None, description="the session record once the patient is checked in")
    session_status: str | None = Field(default=None, description="checked_in, in_progress, completed or aborted")
    vitals_alerts: int = Field(default=0, description="how many of the session's vitals readings raised an alert")


class ScheduleDay(Page[ScheduledAppointmentView]):
    """The day view: a page of the day's appointments (the common page
    shape) with the day and the clinic's time zone."""

    date: date
    time_zone: str


class ProposedConflict(View):
    resource_kind: str
    appointment_id: str | None
    reason: str | None = None


class ProposedAppointment(View):
    starts_at: datetime
    ends_at: datetime
    conflicts: list[ProposedConflict]


class CourseProposal(View):
    plan_id: str
    chair_id: str
    clinician_id: str
    appointments: list[ProposedAppointment]
    bookable: bool


class BookedCourse(View):
    plan_id: str
    course_id: str
    appointments: list[AppointmentView]


class FreeSlot(View):
    starts_at: datetime
    ends_at: datetime
    chair_ids: list[str]
    clinician_ids: list[str]


class FreeSlots(View):
    date: date
    route: str
    slots: list[FreeSlot]


class VitalsReadingView(View):
    reading_id: str
    recorded_at: datetime
    systolic: int | None
    diastolic: int | None
    heart_rate: int | None
    spo2: int | None
    respiratory_rate: int | None
    alerts: list


class SideEffectView(View):
    side_effect_id: str
    effect: str
    severity: str
    serious: bool
    intervention: str | None
    recorded_at: datetime | None
    recorded_by: str | None


class AddendumView(View):
    addendum_id: str
    author: str
    text: str
    written_at: datetime


class ChecklistView(View):
    fasting_confirmed: bool | None
    escort_confirmed: bool | None
    weight_kg: float | None
    baseline_vitals: dict | None
    pre_phq9: int | None
    pre_gad7: int | None
    mood_score: int | None
    missing: list[str]
    previsit: PreVisitView | None


class MonitoringGap(View):
    from_: datetime = Field(alias="from")
    to: datetime
    minutes: float


class DissociationView(View):
    scale: str | None
    score: float | None


class SessionView(View):
    session_id: str
    appointment_id: str
    plan_id: str
    patient_id: str
    status: str
    checked_in_at: datetime | None
    checklist: ChecklistView
    route: str
    drug: str
    dose_mg: float | None
    lot_number: str | None
    started_at: datetime | None
    ended_at: datetime | None
    duration_minutes: float | None
    vitals: list[VitalsReadingView]
    monitoring_gaps: list[MonitoringGap]
    dissociation: DissociationView
    sedation_checked: bool | None
    side_effects: list[SideEffectView]
    discharged_at: datetime | None
    discharge: dict | None
    aborted_at: datetime | None
    abort_reason_code: str | None
    abort_note: str | None
    signed_by: str | None
    signed_at: datetime | None
    addenda: list[AddendumView]
    monitoring_form_id: str | None


class MonitoringFormView(View):
    form_id: str
    session_id: str
    patient_id: str
    session_date: date
    due_on: date
    overdue: bool
    submitted_at: datetime | None
    submitted_by: str | None
    confirmation: str | None
    content: dict | None


class MonitoringFormPage(Page[MonitoringFormView]):
    pass


class PHQ9Score(View):
    total: int
    recorded_at: datetime | None
    session_id: str | None


class CourseSummary(View):
    plan_id: str
    sessions_completed: int
    induction_sessions: int
    course_completed_at: datetime | None
    maintenance_interval_days: int | None
    next_maintenance_due: date | None
    phq9: list[PHQ9Score]
    baseline_phq9: int | None
    final_phq9: int | None
    change_percent: float | None
    response: bool | None
    remission: bool | None


class OutcomePoint(View):
    instrument: Literal["phq9", "gad7"]
    total: int
    band: str
    source: Literal["staff", "self_report"] = Field(description="staff: taken at check-in or entered by a "
                                                    "clinician; self_report: answered by the patient by link")
    recorded_at: datetime
    plan_id: str
    session_id: str | None = Field(description="the session whose check-in took it, if any")


class SessionMarker(View):
    session_id: str
    plan_id: str
    number: int = Field(description="the nth completed session of its course")
    date: date  # the clinic's local date
    started_at: datetime


class CourseOfTreatment(View):
    plan_id: str
    route: str
    status: str
    baseline_phq9: int | None
    created_at: datetime
    course_completed_at: datetime | None


class OutcomeTrajectory(View):
    patient_id: str
    courses: list[CourseOfTreatment]
    points: list[OutcomePoint] = Field(description="PHQ-9 and GAD-7 totals in time order")
    sessions: list[SessionMarker] = Field(description="completed sessions in time order")


class FrontDeskTaskView(View):
    task_id: str
    kind: str = Field(description="no_next_booking, no_show, stopped_after_first, previsit_unconfirmed")
    state: str = Field(description="open or closed")
    reason: str
    patient_id: str
    mrn: str | None
    patient_name: str | None
    plan_id: str | None
    appointment_id: str | None
    opened_at: datetime
    closed_at: datetime | None
    closed_by: str | None
    close_outcome: str | None = Field(
        description="booked, declined, or confirmed (the patient's later YES to the pre-visit message)")
    close_reason: str | None


class FrontDeskTaskPage(Page[FrontDeskTaskView]):
    pass


class RetentionMonth(View):
    month: str = Field(description="YYYY-MM, clinic time")
    courses_started: int = Field(description="first induction session given in the month")
    courses_completed: int = Field(description="last induction session given in the month")
    stopped_after_first: int = Field(description="plans stopped in the month after one induction session")
    median_days_to_complete: float | None = Field(description="first to last session, of those completed")
    with_phq9_change: int = Field(description="completed courses with a baseline and a final PHQ-9")
    response_rate: float | None = Field(description="share of those with a PHQ-9 drop of 50 % or more")
    with_final_phq9: int
    remission_rate: float | None = Field(description="share of those with a final PHQ-9 below 5")


class RetentionReport(View):
    from_: str = Field(alias="from")
    to: str
    time_zone: str
    months: list[RetentionMonth]

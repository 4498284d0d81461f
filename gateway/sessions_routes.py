"""Sessions routes: plans, scheduling, the day view, session records, REMS forms."""
from __future__ import annotations

from common.errors import ValidationFailed
from gateway.http import SVG, ServiceRpc, api, fhir_json, idempotency_key, if_match, page_args, svg_image
from services.sessions import answers, schemas

FRONT_DESK = ("front_desk",)
FRONT_DESK_AND_CLINICIANS = ("front_desk", "clinician")
CLINICIANS = ("clinician",)
ANY_STAFF = ("front_desk", "clinician", "billing")
ADMIN = ("admin",)
PLAN_QUERY = (("plan_id", "string", "only this treatment plan's course (all the patient's courses by default)"),)



def required_arg(request, name: str) -> str:
    value = request.args.get(name)
    if not value:
        raise ValidationFailed(f"{name} is required", [{"field": name, "message": "query parameter is required"}])
    return value


class SessionsRoutes:
    sessions = ServiceRpc("sessions")

    # ------------------------------------------------------------ resources

    @api("POST", "/api/v1/resources", roles=ADMIN, summary="Add a chair, room or clinician to the schedule",
         tag="scheduling", body=schemas.ResourceInput, status=201, idempotent=True, answer=answers.ResourceView)
    def add_resource(self, request, user, payload):
        return self.sessions.add_resource(payload, idempotency_key(request))

    @api("GET", "/api/v1/resources", roles=ANY_STAFF, summary="List chairs, rooms and clinicians", tag="scheduling",
         query=(("kind", "string", "chair or clinician"),), answer=answers.ResourceList)
    def list_resources(self, request, user, payload):
        return {"items": self.sessions.list_resources(request.args.get("kind"))}

    # ---------------------------------------------------------- eligibility

    @api("GET", "/api/v1/patients/{patient_id}/eligibility", roles=ANY_STAFF,
         summary="Read whether a patient may be scheduled for treatment", tag="plans", answer=answers.EligibilityView)
    def get_eligibility(self, request, user, payload, patient_id):
        return self.sessions.get_eligibility(patient_id)

    @api("POST", "/api/v1/patients/{patient_id}/rems-enrollment", roles=CLINICIANS,
         summary="Record the patient's Spravato REMS enrollment", tag="plans", body=schemas.RemsEnrollmentInput, answer=answers.EligibilityView)
    def record_rems_enrollment(self, request, user, payload, patient_id):
        return self.sessions.record_rems_enrollment(patient_id, payload)

    # ---------------------------------------------------------------- plans

    @api("POST", "/api/v1/plans", roles=CLINICIANS, summary="Create a treatment plan", tag="plans",
         body=schemas.PlanInput, status=201, idempotent=True, answer=answers.PlanView)
    def create_plan(self, request, user, payload):
        return self.sessions.create_plan(payload, idempotency_key(request))

    @api("GET", "/api/v1/plans/{plan_id}", roles=ANY_STAFF, summary="Read a treatment plan", tag="plans",
         conditional=True, answer=answers.PlanView)
    def get_plan(self, request, user, payload, plan_id):
        return self.sessions.get_plan(plan_id)

    @api("PATCH", "/api/v1/plans/{plan_id}", roles=CLINICIANS, summary="Change a treatment plan", tag="plans",
         body=schemas.PlanChanges, conditional=True, answer=answers.PlanView)
    def update_plan(self, request, user, payload, plan_id):
        return self.sessions.update_plan(plan_id, payload, if_match=if_match(request))

    @api("GET", "/api/v1/patients/{patient_id}/plans", roles=ANY_STAFF, summary="List a patient's treatment plans",
         tag="plans", answer=answers.PlanList)
    def list_plans(self, request, user, payload, patient_id):
        return {"items": self.sessions.list_plans(patient_id)}

    @api("GET", "/api/v1/plans/{plan_id}/appointments", roles=ANY_STAFF,
         summary="List the appointments of a plan", tag="scheduling", answer=answers.AppointmentList)
    def list_appointments(self, request, user, payload, plan_id):
        return {"items": self.sessions.list_appointments(plan_id)}

    @api("POST", "/api/v1/plans/{plan_id}/course/proposal", roles=FRONT_DESK_AND_CLINICIANS,
         summary="Propose the whole induction course without booking it", tag="scheduling", body=schemas.CourseInput, answer=answers.CourseProposal)
    def propose_course(self, request, user, payload, plan_id):
        return self.sessions.propose_course(plan_id, payload)

    @api("POST", "/api/v1/plans/{plan_id}/course", roles=FRONT_DESK_AND_CLINICIANS,
         summary="Book the whole induction course at once (honours Idempotency-Key)", tag="scheduling",
         body=schemas.CourseInput, status=201, idempotent=True, answer=answers.BookedCourse)
    def book_course(self, request, user, payload, plan_id):
        return self.sessions.book_course(plan_id, payload, idempotency_key(request))

    @api("GET", "/api/v1/plans/{plan_id}/summary", roles=CLINICIANS,
         summary="Read the course summary: PHQ-9 against baseline, response and remission", tag="plans", answer=answers.CourseSummary)
    def get_course_summary(self, request, user, payload, plan_id):
        return self.sessions.get_course_summary(plan_id)

    @api("POST", "/api/v1/plans/{plan_id}/phq9", roles=CLINICIANS,
         summary="Record a PHQ-9 total outside check-in (e.g. end of course)", tag="plans", body=schemas.PHQ9Input,
         status=201, idempotent=True, answer=answers.CourseSummary)
    def record_phq9(self, request, user, payload, plan_id):
        return self.sessions.record_phq9(plan_id, payload, idempotency_key(request))

    # ------------------------------------------------------------ outcome trajectory

    @api("GET", "/api/v1/patients/{patient_id}/outcomes", roles=CLINICIANS,
         summary="Read the patient's PHQ-9 and GAD-7 series across their courses, with the sessions",
         tag="outcomes", query=PLAN_QUERY, answer=answers.OutcomeTrajectory)
    def get_outcomes(self, request, user, payload, patient_id):
        return self.sessions.trajectory(patient_id, request.args.get("plan_id") or None)

    @api("GET", "/api/v1/patients/{patient_id}/outcomes/fhir", roles=CLINICIANS,
         summary="Export the patient's PHQ-9 and GAD-7 series as a FHIR R4 Bundle of Observations",
         tag="fhir", query=PLAN_QUERY, fhir=True)
    def export_outcomes_fhir(self, request, user, payload, patient_id):
        return fhir_json(self.sessions.export_trajectory_fhir(patient_id, request.args.get("plan_id") or None))

    @api("GET", "/api/v1/patients/{patient_id}/outcomes/chart.svg", roles=CLINICIANS,
         summary="Draw the patient's PHQ-9 and GAD-7 series as an SVG chart", tag="outcomes",
         query=PLAN_QUERY, media_type=SVG)
    def get_outcomes_chart(self, request, user, payload, patient_id):
        return svg_image(self.sessions.trajectory_chart(patient_id, request.args.get("plan_id") or None))

    # ------------------------------------------------------------ scheduling

    @api("POST", "/api/v1/appointments", roles=FRONT_DESK_AND_CLINICIANS,
         summary="Book an appointment (honours Idempotency-Key)", tag="scheduling", body=schemas.BookingInput,
         status=201, idempotent=True, answer=answers.AppointmentView)
    def book_appointment(self, request, user, payload):
        return self.sessions.book_appointment(payload, idempotency_key(request))

    @api("GET", "/api/v1/appointments/{appointment_id}", roles=ANY_STAFF, summary="Read an appointment",
         tag="scheduling", conditional=True, answer=answers.AppointmentView)
    def get_appointment(self, request, user, payload, appointment_id):
        return self.sessions.get_appointment(appointment_id)

    @api("POST", "/api/v1/appointments/{appointment_id}/reschedule", roles=FRONT_DESK,
         summary="Move an appointment", tag="scheduling", body=schemas.RescheduleInput, conditional=True, answer=answers.AppointmentView)
    def reschedule_appointment(self, request, user, payload, appointment_id):
        return self.sessions.reschedule_appointment(appointment_id, payload, if_match=if_match(request))

    @api("POST", "/api/v1/appointments/{appointment_id}/cancellation", roles=FRONT_DESK_AND_CLINICIANS,
         summary="Cancel an appointment (late under 24 hours)", tag="scheduling", conditional=True, answer=answers.AppointmentView)
    def cancel_appointment(self, request, user, payload, appointment_id):
        return self.sessions.cancel_appointment(appointment_id, if_match=if_match(request))

    @api("POST", "/api/v1/appointments/{appointment_id}/no-show", roles=FRONT_DESK,
         summary="Mark an appointment a no-show", tag="scheduling", conditional=True, answer=answers.AppointmentView)
    def mark_no_show(self, request, user, payload, appointment_id):
        return self.sessions.mark_no_show(appointment_id, if_match=if_match(request))

    @api("GET", "/api/v1/schedule", roles=ANY_STAFF, summary="Day view of the schedule", tag="scheduling",
         paginated=True, query=(("date", "string", "YYYY-MM-DD, a clinic day (required)"),
                                ("include_cancelled", "boolean", "also list cancelled appointments")), answer=answers.ScheduleDay)
    def get_schedule(self, request, user, payload):
        page = page_args(request)
        return self.sessions.get_schedule(required_arg(request, "date"), page["limit"], page["offset"],
                                          request.args.get("include_cancelled") in ("true", "1"))

    @api("GET", "/api/v1/schedule/free-slots", roles=ANY_STAFF, summary="Free start times on a day",
         tag="scheduling", query=(("date", "string", "YYYY-MM-DD (required)"),
                                  ("route", "string", "iv_infusion, im_injection, intranasal_esketamine or "
                                                      "oral_sublingual (required)"),
                                  ("chair_id", "string", "only this chair"),
                                  ("clinician_id", "string", "only this clinician")), answer=answers.FreeSlots)
    def find_free_slots(self, request, user, payload):
        query = {key: request.args[key] for key in ("date", "route", "chair_id", "clinician_id")
                 if request.args.get(key)}
        return self.sessions.find_free_slots(query)

    # ------------------------------------------------------- session records

    @api("POST", "/api/v1/appointments/{appointment_id}/check-in", roles=FRONT_DESK_AND_CLINICIANS,
         summary="Check the patient in with the pre-session checklist", tag="sessions", body=schemas.Checklist,
         status=201, idempotent=True, answer=answers.SessionView)
    def check_in(self, request, user, payload, appointment_id):
        return self.sessions.check_in(appointment_id, payload, idempotency_key(request))

    @api("GET", "/api/v1/sessions/{session_id}", roles=CLINICIANS, summary="Read a session record", tag="sessions",
         conditional=True, answer=answers.SessionView)
    def get_session(self, request, user, payload, session_id):
        return self.sessions.get_session(session_id)

    @api("GET", "/api/v1/sessions/{session_id}/fhir", roles=CLINICIANS,
         summary="Export the session record as a FHIR R4 Bundle", tag="fhir", fhir=True)
    def export_session_fhir(self, request, user, payload, session_id):
        return fhir_json(self.sessions.export_fhir(session_id))

    @api("PATCH", "/api/v1/sessions/{session_id}/checklist", roles=FRONT_DESK_AND_CLINICIANS,
         summary="Complete the check-in checklist", tag="sessions", body=schemas.Checklist, conditional=True, answer=answers.SessionView)
    def update_checklist(self, request, user, payload, session_id):
        return self.sessions.update_checklist(session_id, payload, if_match=if_match(request))

    @api("POST", "/api/v1/sessions/{session_id}/start", roles=CLINICIANS,
         summary="Start dosing (dose computed from weight and plan)", tag="sessions", body=schemas.StartInput,
         conditional=True, answer=answers.SessionView)
    def start_session(self, request, user, payload, session_id):
        return self.sessions.start_session(session_id, payload, if_match=if_match(request))

    @api("POST", "/api/v1/sessions/{session_id}/vitals", roles=CLINICIANS, summary="Record vital signs",
         tag="sessions", body=schemas.VitalsInput, status=201, idempotent=True, answer=answers.VitalsReadingView)
    def record_vitals(self, request, user, payload, session_id):
        return self.sessions.record_vitals(session_id, payload, idempotency_key(request))

    @api("POST", "/api/v1/sessions/{session_id}/observations", roles=CLINICIANS,
         summary="Record dissociation and sedation checks", tag="sessions", body=schemas.ObservationInput, answer=answers.SessionView)
    def record_observation(self, request, user, payload, session_id):
        return self.sessions.record_observation(session_id, payload)

    @api("POST", "/api/v1/sessions/{session_id}/side-effects", roles=CLINICIANS,
         summary="Record a side effect and the intervention", tag="sessions", body=schemas.SideEffectInput,
         status=201, idempotent=True, answer=answers.SideEffectView)
    def record_side_effect(self, request, user, payload, session_id):
        return self.sessions.record_side_effect(session_id, payload, idempotency_key(request))

    @api("POST", "/api/v1/sessions/{session_id}/completion", roles=CLINICIANS,
         summary="End dosing and discharge the patient", tag="sessions", body=schemas.CompletionInput,
         conditional=True, answer=answers.SessionView)
    def complete_session(self, request, user, payload, session_id):
        return self.sessions.complete_session(session_id, payload, if_match=if_match(request))

    @api("POST", "/api/v1/sessions/{session_id}/abort", roles=CLINICIANS, summary="Abort a session",
         tag="sessions", body=schemas.AbortInput, conditional=True, answer=answers.SessionView)
    def abort_session(self, request, user, payload, session_id):
        return self.sessions.abort_session(session_id, payload, if_match=if_match(request))

    @api("POST", "/api/v1/sessions/{session_id}/signature", roles=CLINICIANS,
         summary="Sign and lock a complete session record", tag="sessions", conditional=True, answer=answers.SessionView)
    def sign_session(self, request, user, payload, session_id):
        return self.sessions.sign_session(session_id, if_match=if_match(request))

    @api("POST", "/api/v1/sessions/{session_id}/addenda", roles=CLINICIANS,
         summary="Amend a signed session record with an addendum", tag="sessions", body=schemas.AddendumInput,
         status=201, idempotent=True, answer=answers.AddendumView)
    def add_addendum(self, request, user, payload, session_id):
        return self.sessions.add_addendum(session_id, payload, idempotency_key(request))

    # -------------------------------------------------- REMS monitoring forms

    @api("GET", "/api/v1/monitoring-forms", roles=CLINICIANS,
         summary="List Spravato Patient Monitoring Forms (overdue by default)", tag="sessions", paginated=True,
         query=(("overdue", "boolean", "false lists every form"), ("as_of", "string", "YYYY-MM-DD")), answer=answers.MonitoringFormPage)
    def list_monitoring_forms(self, request, user, payload):
        page = page_args(request)
        return self.sessions.list_monitoring_forms(request.args.get("overdue", "true") != "false",
                                                   request.args.get("as_of"), page["limit"], page["offset"])

    @api("POST", "/api/v1/monitoring-forms/{form_id}/submission", roles=CLINICIANS,
         summary="Record that a Patient Monitoring Form was submitted", tag="sessions",
         body=schemas.MonitoringFormSubmission, answer=answers.MonitoringFormView)
    def submit_monitoring_form(self, request, user, payload, form_id):
        return self.sessions.submit_monitoring_form(form_id, payload)

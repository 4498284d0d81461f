"""The sessions service's entrypoints: treatment plans, scheduling, monitored
session records, REMS forms and outcomes, plus the eligibility read model
built from intake's events. Each RPC method validates its input, applies the
rules in ``domain`` inside one unit of work, and returns JSON-able dicts."""
from __future__ import annotations

import logging
import uuid
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from common import idempotency
from common.errors import Conflict, Forbidden, NotFound, ValidationFailed, field_error
from common.events import as_utc, iso, utcnow
from common.handlers import consumes, rpc
from common.service import ClinicService, ConfigSection
from common.validation import paging, parse, require_id
from services.sessions import domain, fhir, schemas
from services.sessions.capabilities import self_reports
from services.sessions.domain import AppointmentStatus, SessionStatus
from services.sessions.models import (
    Addendum, Appointment, MonitoringForm, PatientEligibility, PHQ9Score, RecordAccess, Resource,
    ResourceBooking, SessionRecord, SideEffect, TreatmentPlan, VitalsReading,
)
from services.sessions.schemas import (
    addendum_view, appointment_view, eligibility_view, form_view, measures, plan_view, reading_view,
    resource_view, side_effect_view,
)

log = logging.getLogger(__name__)

CLINICIAN_ROLES = ("clinician", "admin")
# Times typed in by staff may be backdated (charting after the fact), but a
# clock a little ahead of ours is no reason to refuse a reading.
FUTURE_TOLERANCE = timedelta(minutes=5)
# How far back a check-in may be charted after the fact.
CHARTING_WINDOW = timedelta(hours=12)


class SessionsService(self_reports.SelfReports, ClinicService):
    name = "sessions"

    rules = ConfigSection("SESSIONS", domain.Rules.from_config)

    # -------------------------------------------------------------- resources

    @rpc
    def add_resource(self, resource, idempotency_key=None):
        given = parse(schemas.ResourceInput, resource)
        with self.db.unit_of_work() as uow:
            claim = idempotency.claim(uow, "add_resource", idempotency_key, given)
            if claim.replayed:
                return claim.answer
            record = Resource(kind=given.kind, name=given.name)
            uow.session.add(record)
            flush_or_conflict(uow.session, f"a {given.kind} named {given.name!r} already exists")
            return claim.remember(resource_view(record))

    @rpc
    def list_resources(self, kind=None):
        with self.db.read() as session:
            query = sa.select(Resource).where(Resource.active.is_(True))
            if kind:
                query = query.where(Resource.kind == kind)
            return [resource_view(r) for r in session.execute(query.order_by(Resource.kind, Resource.name)).scalars()]

    # ------------------------------------------------------------ eligibility

    @rpc
    def get_eligibility(self, patient_id):
        with self.db.read() as session:
            row = session.get(PatientEligibility, require_id(patient_id, "patient_id"))
            if row is None:
                raise NotFound(f"sessions has heard nothing from intake about patient {patient_id}")
            return eligibility_view(row)

    @rpc
    def record_rems_enrollment(self, patient_id, enrollment):
        """Spravato REMS: esketamine is refused until this is recorded."""
        given = parse(schemas.RemsEnrollmentInput, enrollment)
        self._require_clinician("record a REMS enrollment")
        with self.db.unit_of_work() as uow:
            row = self._eligibility_row(uow.session, require_id(patient_id, "patient_id"))
            row.rems_enrollment_id = given.enrollment_id
            row.rems_enrolled_at = given.enrolled_on
            return eligibility_view(row)

    @consumes("intake", "intake.approved")
    def on_intake_approved(self, uow, event):
        row = self._eligibility_row(uow.session, event.data["patient_id"], lock=True)
        row.mrn = event.data.get("mrn") or row.mrn
        if newer(event.occurred_at, row.intake_as_of):
            row.intake_status, row.intake_as_of = "approved", event.occurred_at
            row.weight_kg = event.data.get("weight_kg")
            phq9 = (event.data.get("scores") or {}).get("phq9") or {}
            row.baseline_phq9 = phq9.get("total")

    @consumes("intake", "intake.declined")
    def on_intake_declined(self, uow, event):
        row = self._eligibility_row(uow.session, event.data["patient_id"], lock=True)
        if newer(event.occurred_at, row.intake_as_of):
            row.intake_status, row.intake_as_of = "declined", event.occurred_at

    @consumes("intake", "consent.recorded")
    def on_consent_recorded(self, uow, event):
        if event.data.get("kind") != "treatment":
            return
        row = self._eligibility_row(uow.session, event.data["patient_id"], lock=True)
        if newer(event.occurred_at, row.consent_as_of):
            row.treatment_consent, row.consent_as_of = event.data["status"], event.occurred_at

    @consumes("intake", "patient.registered")
    def on_patient_registered(self, uow, event):
        self._apply_patient_details(uow, event)

    @consumes("intake", "patient.updated")
    def on_patient_updated(self, uow, event):
        self._apply_patient_details(uow, event)

    def _apply_patient_details(self, uow, event):
        row = self._eligibility_row(uow.session, event.data["patient_id"], lock=True)
        if newer(event.occurred_at, row.details_as_of):
            row.mrn = event.data.get("mrn") or row.mrn
            row.given_name = event.data.get("given_name")
            row.family_name = event.data.get("family_name")
            row.time_zone = event.data.get("time_zone")
            row.details_as_of = event.occurred_at

    # ------------------------------------------------------------------ plans

    @rpc
    def create_plan(self, plan, idempotency_key=None):
        given = parse(schemas.PlanInput, plan)
        actor = self._require_clinician("create a treatment plan")
        rules = self._rules()
        route = domain.route(given.route)
        # Kept to 0.1 mg like the charted dose, and rounded the same way: down.
        max_dose = domain.round_dose(given.max_dose_mg or route.default_max_dose_mg)
        mg_per_kg = given.mg_per_kg if given.mg_per_kg is not None or route.fixed_doses_mg else route.default_mg_per_kg
        domain.check_plan_dosing(given.route, mg_per_kg, given.fixed_dose_mg, max_dose, given.max_mg_per_kg)
        with self.db.unit_of_work() as uow:
            claim = idempotency.claim(uow, "create_plan", idempotency_key, given)
            if claim.replayed:
                return claim.answer
            eligibility = self._check_eligible(uow.session, given.patient_id, given.route)
            record = TreatmentPlan(
                patient_id=given.patient_id, route=given.route, drug=route.drug, indication=given.indication,
                mg_per_kg=mg_per_kg, fixed_dose_mg=given.fixed_dose_mg, max_dose_mg=max_dose,
                max_mg_per_kg=given.max_mg_per_kg, induction_sessions=given.induction_sessions or rules.course.induction_sessions,
                min_hours_apart=given.min_hours_apart if given.min_hours_apart is not None
                else rules.course.min_hours_apart,
                maintenance_interval_days=given.maintenance_interval_days,
                baseline_phq9=eligibility.baseline_phq9, created_by=actor,
            )
            uow.session.add(record)
            uow.session.flush()
            self._audit(uow, record.patient_id, "plan_create", record.plan_id)
            uow.emit("plan.created", {
                "patient_id": record.patient_id, "plan_id": record.plan_id, "route": record.route,
                "drug": record.drug, "induction_sessions": record.induction_sessions,
                "mg_per_kg": record.mg_per_kg, "max_dose_mg": record.max_dose_mg,
                "max_mg_per_kg": record.max_mg_per_kg, "created_by": actor,
            })
            return claim.remember(plan_view(record))

    @rpc
    def update_plan(self, plan_id, changes):
        given = parse(schemas.PlanChanges, changes)
        changed = given.model_dump(exclude_unset=True)
        if not changed:
            raise ValidationFailed("no fields to change", [{"field": "", "message": "give at least one field"}])
        actor = self._require_clinician("change a treatment plan")
        with self.db.unit_of_work() as uow:
            record = self._plan(uow.session, plan_id, lock=True)
            if changed.get("max_dose_mg") is not None:
                changed["max_dose_mg"] = domain.round_dose(changed["max_dose_mg"])
            for name, value in changed.items():
                setattr(record, name, value)
            domain.check_plan_dosing(record.route, record.mg_per_kg, record.fixed_dose_mg, record.max_dose_mg,
                                     record.max_mg_per_kg)
            record.updated_by = actor
            self._audit(uow, record.patient_id, "plan_update", record.plan_id)
            return plan_view(record)

    @rpc
    def get_plan(self, plan_id):
        with self.db.unit_of_work() as uow:
            record = self._plan(uow.session, plan_id)
            self._audit(uow, record.patient_id, "plan_read", record.plan_id)
            return plan_view(record)

    @rpc
    def list_plans(self, patient_id):
        with self.db.unit_of_work() as uow:
            rows = uow.session.execute(sa.select(TreatmentPlan).where(
                TreatmentPlan.patient_id == require_id(patient_id, "patient_id"))
                .order_by(TreatmentPlan.created_at)).scalars().all()
            self._audit(uow, patient_id, "plan_list")
            return [plan_view(r) for r in rows]

    # ------------------------------------------------------------- scheduling

    @rpc
    def book_appointment(self, booking, idempotency_key=None):
        given = parse(schemas.BookingInput, booking)
        with self.db.unit_of_work() as uow:
            claim = idempotency.claim(uow, "book_appointment", idempotency_key, given)
            if claim.replayed:
                return claim.answer
            plan = self._plan(uow.session, given.plan_id, lock=True)
            self._check_bookable(uow.session, plan)
            record = self._book(uow, plan, given.starts_at, given.chair_id, given.clinician_id, given.kind)
            return claim.remember(appointment_view(record))

    @rpc
    def propose_course(self, plan_id, course):
        """The induction course as it would be booked, without booking it:
        each proposed start with what, if anything, stands in its way."""
        given = parse(schemas.CourseInput, course)
        with self.db.read() as session:
            plan = self._plan(session, plan_id)
            self._resource(session, given.chair_id, "chair")
            self._resource(session, given.clinician_id, "clinician")
            starts = self._course_starts(session, plan, given)
            others = self._other_session_starts(session, plan.patient_id)
            proposal = []
            for start in starts:
                ends = start + self._length(plan.route)
                conflicts = self._conflicts(session, plan.patient_id, given.chair_id, given.clinician_id, start, ends)
                try:
                    domain.check_spacing(start, others, plan.min_hours_apart)
                except Conflict as exc:
                    conflicts.append({"resource_kind": "patient", "appointment_id": None, "reason": exc.message})
                proposal.append({"starts_at": iso(start), "ends_at": iso(ends), "conflicts": conflicts})
            return {"plan_id": plan.plan_id, "chair_id": given.chair_id, "clinician_id": given.clinician_id,
                    "appointments": proposal, "bookable": not any(p["conflicts"] for p in proposal)}

    @rpc
    def book_course(self, plan_id, course, idempotency_key=None):
        """Book the whole proposed induction course at once, or nothing."""
        given = parse(schemas.CourseInput, course)
        with self.db.unit_of_work() as uow:
            claim = idempotency.claim(uow, "book_course", idempotency_key, plan_id, given)
            if claim.replayed:
                return claim.answer
            plan = self._plan(uow.session, plan_id, lock=True)
            self._check_bookable(uow.session, plan)
            course_id = str(uuid.uuid4())
            booked = [self._book(uow, plan, start, given.chair_id, given.clinician_id, "induction", course_id)
                      for start in self._course_starts(uow.session, plan, given)]
            # One fact for the whole course, so the patient is told once,
            # with every date, rather than once per appointment.
            uow.emit("course.booked", {
                "patient_id": plan.patient_id, "plan_id": plan.plan_id, "course_id": course_id,
                "route": plan.route, "chair_id": given.chair_id, "clinician_id": given.clinician_id,
                "appointments": [{"appointment_id": a.appointment_id, "sequence": a.sequence,
                                  "starts_at": iso(a.starts_at), "ends_at": iso(a.ends_at)} for a in booked],
            })
            view = {"plan_id": plan.plan_id, "course_id": course_id,
                    "appointments": [appointment_view(a) for a in booked]}
            return claim.remember(view)

    @rpc
    def reschedule_appointment(self, appointment_id, change):
        given = parse(schemas.RescheduleInput, change)
        with self.db.unit_of_work() as uow:
            record = self._appointment(uow.session, appointment_id, lock=True)
            domain.check_appointment_move(AppointmentStatus(record.status), "reschedule")
            plan = self._plan(uow.session, record.plan_id, lock=True)
            self._check_bookable(uow.session, plan)
            previous = as_utc(record.starts_at)
            # Released first, in its own statement, so the new slots may
            # overlap the old ones.
            uow.session.execute(sa.delete(ResourceBooking).where(ResourceBooking.appointment_id == record.appointment_id))
            chair_id, clinician_id = given.chair_id or record.chair_id, given.clinician_id or record.clinician_id
            starts, ends = self._check_slot(uow.session, plan, given.starts_at, chair_id, clinician_id,
                                            moving=record.appointment_id)
            record.starts_at, record.ends_at, record.chair_id, record.clinician_id = starts, ends, chair_id, clinician_id
            self._hold(uow.session, record)
            uow.emit("appointment.rescheduled", {
                "patient_id": record.patient_id, "appointment_id": record.appointment_id,
                "previous_starts_at": iso(previous), "starts_at": iso(starts), "ends_at": iso(ends),
                "route": record.route, "chair_id": chair_id, "clinician_id": clinician_id,
            })
            return appointment_view(record)

    @rpc
    def cancel_appointment(self, appointment_id):
        with self.db.unit_of_work() as uow:
            record = self._appointment(uow.session, appointment_id, lock=True)
            domain.check_appointment_move(AppointmentStatus(record.status), "cancel")
            now = utcnow()
            record.status = AppointmentStatus.CANCELLED.value
            record.cancelled_at = now
            record.late_cancellation = domain.is_late_cancellation(
                as_utc(record.starts_at), now, self._rules().late_cancellation_hours)
            record.cancelled_by_role = actor_role(self.db.actor) or "system"
            uow.session.execute(sa.delete(ResourceBooking).where(ResourceBooking.appointment_id == record.appointment_id))
            uow.emit("appointment.cancelled", {
                "patient_id": record.patient_id, "appointment_id": record.appointment_id,
                "starts_at": iso(record.starts_at), "cancelled_at": iso(now),
                "late": record.late_cancellation, "cancelled_by_role": record.cancelled_by_role,
            })
            return appointment_view(record)

    @rpc
    def mark_no_show(self, appointment_id):
        with self.db.unit_of_work() as uow:
            record = self._appointment(uow.session, appointment_id, lock=True)
            domain.check_appointment_move(AppointmentStatus(record.status), "no_show")
            if as_utc(record.starts_at) > utcnow():
                raise Conflict("an appointment cannot be marked a no-show before it starts")
            record.status = AppointmentStatus.NO_SHOW.value
            uow.emit("appointment.no_show", {
                "patient_id": record.patient_id, "appointment_id": record.appointment_id,
                "starts_at": iso(record.starts_at), "route": record.route,
            })
            return appointment_view(record)

    @rpc
    def get_appointment(self, appointment_id):
        with self.db.read() as session:
            return appointment_view(self._appointment(session, appointment_id))

    @rpc
    def list_appointments(self, plan_id):
        with self.db.read() as session:
            plan = self._plan(session, plan_id)
            rows = session.execute(sa.select(Appointment).where(Appointment.plan_id == plan.plan_id)
                                   .order_by(Appointment.starts_at)).scalars()
            return [appointment_view(r) for r in rows]

    @rpc
    def get_schedule(self, day, limit=50, offset=0, include_cancelled=False):
        """The day view for the staff UI: every appointment of a clinic day
        (clinic time zone), with the patient's MRN and name and the chair's
        and clinician's names."""
        on = parse_day(day)
        hours = self._rules().hours
        # Midnight to midnight in the clinic's zone, as UTC (a DST day is 23 or 25 hours).
        start = datetime.combine(on, datetime.min.time(), hours.zone).astimezone(timezone.utc)
        end = datetime.combine(on + timedelta(days=1), datetime.min.time(), hours.zone).astimezone(timezone.utc)
        query = sa.select(Appointment).where(Appointment.starts_at >= start, Appointment.starts_at < end)
        if not include_cancelled:
            query = query.where(Appointment.status != AppointmentStatus.CANCELLED.value)
        limit, offset = paging(limit, offset, most=200)
        with self.db.read() as session:
            total = session.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
            rows = session.execute(query.order_by(Appointment.starts_at, Appointment.appointment_id)
                                   .limit(limit).offset(offset)).scalars().all()
            names = resource_names(session)
            patients = {p.patient_id: p for p in session.execute(sa.select(PatientEligibility).where(
                PatientEligibility.patient_id.in_({r.patient_id for r in rows}))).scalars()}
            items = []
            for row in rows:
                patient = patients.get(row.patient_id)
                items.append({**appointment_view(row),
                              "mrn": patient.mrn if patient else None,
                              "patient_name": " ".join(filter(None, (patient.given_name, patient.family_name)))
                              if patient else None,
                              "chair": names.get(row.chair_id), "clinician": names.get(row.clinician_id)})
            return {"date": on.isoformat(), "time_zone": hours.time_zone, "items": items,
                    "total": total, "limit": limit, "offset": offset}

    @rpc
    def find_free_slots(self, query):
        """Start times on a day when a visit of the route's length fits with
        a free chair and a free clinician (optionally a given one)."""
        given = parse(schemas.FreeSlotsQuery, query)
        rules = self._rules()
        hours = rules.hours
        length = self._length(given.route)
        if not hours.is_open_day(given.date):
            return {"date": given.date.isoformat(), "route": given.route, "slots": []}
        opens, closes = hours.day_bounds(given.date)
        with self.db.read() as session:
            chairs = self._resource_ids(session, "chair", given.chair_id)
            clinicians = self._resource_ids(session, "clinician", given.clinician_id)
            busy: dict[str, set] = {rid: set() for rid in chairs + clinicians}
            for resource_id, slot in session.execute(
                    sa.select(ResourceBooking.resource_id, ResourceBooking.slot_start).where(
                        ResourceBooking.resource_id.in_(list(busy)),
                        ResourceBooking.slot_start >= opens, ResourceBooking.slot_start < closes)):
                busy[resource_id].add(as_utc(slot))
        free = {rid: set(domain.free_starts(opens, closes, length, hours.slot_minutes, taken, utcnow()))
                for rid, taken in busy.items()}
        slots = []
        for start in domain.free_starts(opens, closes, length, hours.slot_minutes, set(), utcnow()):
            free_chairs = [c for c in chairs if start in free[c]]
            free_clinicians = [c for c in clinicians if start in free[c]]
            if free_chairs and free_clinicians:
                slots.append({"starts_at": iso(start), "ends_at": iso(start + length),
                              "chair_ids": free_chairs, "clinician_ids": free_clinicians})
        return {"date": given.date.isoformat(), "route": given.route, "slots": slots}

    # -------------------------------------------------------- session records

    @rpc
    def check_in(self, appointment_id, checklist, idempotency_key=None):
        given = parse(schemas.CheckInInput, checklist)
        checked_in_at = not_future(given.checked_in_at, "checked_in_at")
        if utcnow() - checked_in_at > CHARTING_WINDOW:
            raise field_error("checked_in_at", f"must be within the last {CHARTING_WINDOW.seconds // 3600} hours")
        with self.db.unit_of_work() as uow:
            claim = idempotency.claim(uow, "check_in", idempotency_key, appointment_id, given)
            if claim.replayed:
                return claim.answer
            appointment = self._appointment(uow.session, appointment_id, lock=True)
            domain.check_appointment_move(AppointmentStatus(appointment.status), "check_in")
            rules = self._rules()
            domain.check_check_in_time(checked_in_at, as_utc(appointment.starts_at), as_utc(appointment.created_at),
                                       rules.hours, rules.check_in_early)
            self._check_eligible(uow.session, appointment.patient_id, appointment.route)
            plan = self._plan(uow.session, appointment.plan_id)
            appointment.status = AppointmentStatus.CHECKED_IN.value
            record = SessionRecord(appointment_id=appointment.appointment_id, plan_id=plan.plan_id,
                                   patient_id=appointment.patient_id, route=plan.route, drug=plan.drug,
                                   checked_in_at=checked_in_at)
            uow.session.add(record)
            flush_or_conflict(uow.session, "this appointment is already checked in")
            self._apply_checklist(uow, record, appointment, given, measured_at=checked_in_at)
            self._audit(uow, record.patient_id, "check_in", record.session_id)
            uow.emit("session.checked_in", {
                "patient_id": record.patient_id, "session_id": record.session_id,
                "appointment_id": appointment.appointment_id, "checked_in_at": iso(record.checked_in_at),
            })
            return claim.remember(self._session_view(uow.session, record))

    @rpc
    def update_checklist(self, session_id, checklist):
        given = parse(schemas.Checklist, checklist)
        with self.db.unit_of_work() as uow:
            record = self._session(uow.session, session_id, lock=True)
            domain.check_session_move(SessionStatus(record.status), "update_checklist", signed=bool(record.signed_at))
            self._apply_checklist(uow, record, self._appointment(uow.session, record.appointment_id), given)
            self._audit(uow, record.patient_id, "checklist", record.session_id)
            return self._session_view(uow.session, record)

    @rpc
    def start_session(self, session_id, start):
        given = parse(schemas.StartInput, start)
        self._require_clinician("start a session")
        started_at = not_future(given.started_at, "started_at")
        with self.db.unit_of_work() as uow:
            record = self._session(uow.session, session_id, lock=True)
            domain.check_session_move(SessionStatus(record.status), "start", signed=bool(record.signed_at))
            missing = domain.missing_checklist_items(checklist_facts(record))
            if missing:
                raise Conflict("the check-in checklist is incomplete: " + ", ".join(missing), {"missing": missing})
            if started_at < as_utc(record.checked_in_at):
                raise field_error("started_at", "must not be before the patient checked in")
            self._check_eligible(uow.session, record.patient_id, record.route)
            plan = self._plan(uow.session, record.plan_id)
            record.dose_mg = domain.compute_dose_mg(
                weight_kg=record.weight_kg, mg_per_kg=plan.mg_per_kg, fixed_dose_mg=plan.fixed_dose_mg,
                max_dose_mg=plan.max_dose_mg, requested_mg=given.dose_mg,
                device_doses_mg=domain.route(plan.route).fixed_doses_mg, max_mg_per_kg=plan.max_mg_per_kg)
            record.lot_number = given.lot_number
            record.started_at = started_at
            record.status = SessionStatus.IN_PROGRESS.value
            self._appointment(uow.session, record.appointment_id).status = AppointmentStatus.IN_SESSION.value
            self._audit(uow, record.patient_id, "session_start", record.session_id)
            uow.emit("session.started", {
                "patient_id": record.patient_id, "session_id": record.session_id,
                "appointment_id": record.appointment_id, "route": record.route, "drug": record.drug,
                "dose_mg": record.dose_mg, "started_at": iso(started_at),
            })
            return self._session_view(uow.session, record)

    @rpc
    def record_vitals(self, session_id, vitals, idempotency_key=None):
        given = parse(schemas.VitalsInput, vitals)
        recorded_at = not_future(given.recorded_at, "recorded_at")
        with self.db.unit_of_work() as uow:
            claim = idempotency.claim(uow, "record_vitals", idempotency_key, session_id, given)
            if claim.replayed:
                return claim.answer
            record = self._session(uow.session, session_id, lock=True)
            domain.check_session_move(SessionStatus(record.status), "record", signed=bool(record.signed_at))
            appointment = self._appointment(uow.session, record.appointment_id)
            reading = self._add_reading(uow, record, appointment, given.model_dump(exclude={"recorded_at"}),
                                        recorded_at)
            self._audit(uow, record.patient_id, "vitals", record.session_id)
            return claim.remember(reading_view(reading))

    @rpc
    def record_observation(self, session_id, observation):
        """Dissociation (CADSS or a 0–10 scale) and, for esketamine, the sedation check."""
        given = parse(schemas.ObservationInput, observation)
        with self.db.unit_of_work() as uow:
            record = self._session(uow.session, session_id, lock=True)
            domain.check_session_move(SessionStatus(record.status), "record", signed=bool(record.signed_at))
            if given.dissociation_scale is not None:
                record.dissociation_scale, record.dissociation_score = given.dissociation_scale, given.dissociation_score
            if given.sedation_checked is not None:
                record.sedation_checked = given.sedation_checked
            self._audit(uow, record.patient_id, "observation", record.session_id)
            return self._session_view(uow.session, record)

    @rpc
    def record_side_effect(self, session_id, side_effect, idempotency_key=None):
        given = parse(schemas.SideEffectInput, side_effect)
        recorded_at = not_future(given.recorded_at, "recorded_at")
        with self.db.unit_of_work() as uow:
            claim = idempotency.claim(uow, "record_side_effect", idempotency_key, session_id, given)
            if claim.replayed:
                return claim.answer
            record = self._session(uow.session, session_id, lock=True)
            domain.check_session_move(SessionStatus(record.status), "record", signed=bool(record.signed_at))
            entry = SideEffect(session_id=record.session_id, effect=given.effect, severity=given.severity,
                               serious=given.serious, intervention=given.intervention, recorded_at=recorded_at,
                               recorded_by=self.db.actor)
            uow.session.add(entry)
            uow.session.flush()
            self._audit(uow, record.patient_id, "side_effect", record.session_id)
            return claim.remember(side_effect_view(entry))

    @rpc
    def complete_session(self, session_id, completion):
        """End of dosing and discharge. Refused until the discharge criteria
        (and, for esketamine, the REMS monitoring points) are met."""
        given = parse(schemas.CompletionInput, completion)
        self._require_clinician("discharge a patient")
        rules = self._rules()
        if not given.no_driving_advised:
            raise field_error("no_driving_advised", "the patient must be told not to drive until the next day")
        with self.db.unit_of_work() as uow:
            record = self._session(uow.session, session_id, lock=True)
            domain.check_session_move(SessionStatus(record.status), "complete", signed=bool(record.signed_at))
            plan = self._plan(uow.session, record.plan_id, lock=True)
            started_at = as_utc(record.started_at)
            if record.route == "iv_infusion" and given.stopped_at is None:
                # The infusion time is what is billed (96365/96366): it is
                # charted, never guessed from the discharge time.
                raise field_error("stopped_at", "give the time the infusion stopped")
            stopped_at = not_future(given.stopped_at, "stopped_at")
            discharged_at = not_future(given.discharged_at, "discharged_at")
            if stopped_at < started_at:
                raise field_error("stopped_at", "must not be before the session started")
            if discharged_at < stopped_at:
                raise field_error("discharged_at", "must not be before dosing stopped")
            readings = self._readings(uow.session, record)
            after_dosing = [r for r in readings if as_utc(r.recorded_at) > started_at]
            problems = domain.discharge_problems(
                record.baseline_vitals or {}, measures(after_dosing[-1]) if after_dosing else None,
                alert_and_oriented=given.alert_and_oriented, escort_present=given.escort_present,
                rules=rules.discharge, limits=rules.vitals)
            if record.route == domain.ESKETAMINE:
                problems += domain.rems_monitoring_problems(
                    started_at, discharged_at,
                    [as_utc(r.recorded_at) for r in readings if r.systolic is not None],
                    domain.route(record.route).min_observation_minutes)
            if problems:
                raise Conflict("the patient cannot be discharged yet: " + ", ".join(problems), {"problems": problems})
            record.ended_at, record.discharged_at = stopped_at, discharged_at
            record.discharge = {"alert_and_oriented": True, "escort_present": True, "no_driving_advised": True}
            record.status = SessionStatus.COMPLETED.value
            appointment = self._appointment(uow.session, record.appointment_id)
            appointment.status = AppointmentStatus.COMPLETED.value
            uow.session.flush()
            # The nth treatment actually given in the plan, whatever was
            # cancelled or aborted on the way: what billing counts packages by.
            given_so_far = uow.session.execute(sa.select(sa.func.count()).select_from(Appointment).where(
                Appointment.plan_id == plan.plan_id,
                Appointment.status == AppointmentStatus.COMPLETED.value)).scalar_one()
            uow.emit("session.completed", {
                "patient_id": record.patient_id, "session_id": record.session_id,
                "appointment_id": record.appointment_id, "plan_id": record.plan_id, "route": record.route,
                "drug": record.drug, "dose_mg": record.dose_mg, "started_at": iso(started_at),
                "ended_at": iso(stopped_at), "duration_minutes": domain.minutes_between(started_at, stopped_at),
                "date_of_service": rules.hours.local_date(started_at).isoformat(),
                "clinician_id": appointment.clinician_id, "sequence": given_so_far,
            })
            if record.route == domain.ESKETAMINE:
                self._open_monitoring_form(uow.session, record, readings, rules)
            self._complete_course_if_done(uow, plan)
            self._audit(uow, record.patient_id, "session_complete", record.session_id)
            return self._session_view(uow.session, record)

    @rpc
    def abort_session(self, session_id, abort):
        given = parse(schemas.AbortInput, abort)
        with self.db.unit_of_work() as uow:
            record = self._session(uow.session, session_id, lock=True)
            domain.check_session_move(SessionStatus(record.status), "abort", signed=bool(record.signed_at))
            now = utcnow()
            record.status = SessionStatus.ABORTED.value
            record.aborted_at, record.abort_reason_code, record.abort_note = now, given.reason_code, given.note
            self._appointment(uow.session, record.appointment_id).status = AppointmentStatus.ABORTED.value
            self._audit(uow, record.patient_id, "session_abort", record.session_id)
            started_at = as_utc(record.started_at)
            service_day = self._rules().hours.local_date(started_at or now)
            # The note is clinical free text: only the reason code leaves.
            uow.emit("session.aborted", {
                "patient_id": record.patient_id, "session_id": record.session_id,
                "appointment_id": record.appointment_id, "route": record.route, "drug": record.drug,
                "dose_mg": record.dose_mg, "started_at": iso(started_at), "aborted_at": iso(now),
                "duration_minutes": domain.minutes_between(started_at, now), "reason_code": given.reason_code,
                "date_of_service": service_day.isoformat(),
            })
            return self._session_view(uow.session, record)

    @rpc
    def sign_session(self, session_id):
        actor = self._require_clinician("sign a session record")
        with self.db.unit_of_work() as uow:
            record = self._session(uow.session, session_id, lock=True)
            if record.signed_at:
                raise Conflict("the session record is already signed")
            missing = domain.missing_for_signature(self._signature_facts(uow.session, record))
            if missing:
                raise Conflict("the record is incomplete: " + ", ".join(missing), {"missing": missing})
            record.signed_by, record.signed_at = actor, utcnow()
            self._audit(uow, record.patient_id, "sign", record.session_id)
            return self._session_view(uow.session, record)

    @rpc
    def add_addendum(self, session_id, addendum, idempotency_key=None):
        given = parse(schemas.AddendumInput, addendum)
        actor = self._require_clinician("amend a session record")
        with self.db.unit_of_work() as uow:
            claim = idempotency.claim(uow, "add_addendum", idempotency_key, session_id, given)
            if claim.replayed:
                return claim.answer
            record = self._session(uow.session, session_id, lock=True)
            if not record.signed_at:
                raise Conflict("the record is not signed yet: change it directly instead of adding an addendum")
            entry = Addendum(session_id=record.session_id, author=actor, text=given.text, written_at=utcnow())
            uow.session.add(entry)
            uow.session.flush()
            self._audit(uow, record.patient_id, "addendum", record.session_id)
            return claim.remember(addendum_view(entry))

    @rpc
    def get_session(self, session_id):
        with self.db.unit_of_work() as uow:
            record = self._session(uow.session, session_id)
            self._audit(uow, record.patient_id, "session_read", record.session_id)
            return self._session_view(uow.session, record)

    @rpc
    def export_fhir(self, session_id):
        """A FHIR R4 Bundle (collection) of the session: its Appointment,
        Encounter, MedicationAdministration and vitals Observations."""
        with self.db.unit_of_work() as uow:
            record = self._session(uow.session, session_id)
            self._audit(uow, record.patient_id, "fhir_export", record.session_id)
            appointment = self._appointment(uow.session, record.appointment_id)
            plan = self._plan(uow.session, record.plan_id)
            resources = {r.resource_id: r for r in uow.session.execute(sa.select(Resource).where(
                Resource.resource_id.in_((appointment.chair_id, appointment.clinician_id)))).scalars()}
            return fhir.session_bundle(record, appointment, plan, self._readings(uow.session, record), resources)

    # ---------------------------------------------------- REMS monitoring forms

    @rpc
    def list_monitoring_forms(self, overdue_only=True, as_of=None, limit=50, offset=0):
        """Patient Monitoring Forms; by default the overdue ones (not
        submitted and past their 7-day deadline), oldest first."""
        today = parse_day(as_of) if as_of else self._rules().hours.local_date(utcnow())
        query = sa.select(MonitoringForm)
        if overdue_only:
            query = query.where(MonitoringForm.submitted_at.is_(None), MonitoringForm.due_on < today)
        limit, offset = paging(limit, offset, most=200)
        with self.db.read() as session:
            total = session.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
            rows = session.execute(query.order_by(MonitoringForm.due_on, MonitoringForm.form_id)
                                   .limit(limit).offset(offset)).scalars()
            return {"items": [form_view(r, today) for r in rows], "total": total, "limit": limit, "offset": offset}

    @rpc
    def submit_monitoring_form(self, form_id, submission):
        given = parse(schemas.MonitoringFormSubmission, submission)
        with self.db.unit_of_work() as uow:
            form = uow.session.get(MonitoringForm, require_id(form_id, "form_id"), with_for_update=True)
            if form is None:
                raise NotFound(f"no monitoring form {form_id}")
            if form.submitted_at:
                raise Conflict("the monitoring form is already submitted")
            form.submitted_at, form.submitted_by, form.confirmation = utcnow(), self.db.actor, given.confirmation
            return form_view(form, self._rules().hours.local_date(utcnow()))

    # -------------------------------------------------------------- outcomes

    @rpc
    def record_phq9(self, plan_id, score, idempotency_key=None):
        """A PHQ-9 total outside check-in, e.g. the end-of-course score."""
        given = parse(schemas.PHQ9Input, score)
        with self.db.unit_of_work() as uow:
            claim = idempotency.claim(uow, "record_phq9", idempotency_key, plan_id, given)
            if claim.replayed:
                return claim.answer
            plan = self._plan(uow.session, plan_id, lock=True)
            uow.session.add(PHQ9Score(plan_id=plan.plan_id, total=given.total, recorded_at=utcnow()))
            uow.session.flush()
            self._audit(uow, plan.patient_id, "phq9", plan.plan_id)
            return claim.remember(self._course_summary(uow.session, plan))

    @rpc
    def get_course_summary(self, plan_id):
        with self.db.unit_of_work() as uow:
            plan = self._plan(uow.session, plan_id)
            self._audit(uow, plan.patient_id, "summary_read", plan.plan_id)
            return self._course_summary(uow.session, plan)

    @rpc
    def list_record_access(self, patient_id, limit=100, offset=0):
        """Who read or changed the patient's treatment record, newest first."""
        limit, offset = paging(limit, offset, most=200)
        with self.db.read() as session:
            return RecordAccess.trail(session, require_id(patient_id, "patient_id"), limit, offset)

    # ----------------------------------------------------------------- helpers

    def _rules(self) -> domain.Rules:
        return self.rules

    def _require_clinician(self, what: str) -> str:
        """Plans, doses, discharge and signatures are a clinician's; the
        gateway checks roles too, but other systems call RPC directly."""
        actor = self.db.actor
        if actor_role(actor) not in CLINICIAN_ROLES:
            raise Forbidden(f"only a clinician may {what}; send context_data "
                            "{'actor': '<user> (clinician)'} with the call")
        return actor

    def _audit(self, uow, patient_id: str, action: str, subject_id: str | None = None) -> None:
        RecordAccess.record(uow, patient_id, action, subject_id=subject_id)

    def _eligibility_row(self, session, patient_id: str, lock: bool = False) -> PatientEligibility:
        row = session.get(PatientEligibility, patient_id, with_for_update=lock or None)
        if row is None:
            row = PatientEligibility(patient_id=patient_id, intake_status="unknown", treatment_consent="unknown")
            session.add(row)
            # Two first events for one patient racing: the loser's insert
            # fails, its handler is retried and then finds the row.
            session.flush()
        return row

    def _check_eligible(self, session, patient_id: str, route_code: str, lock: bool = False) -> PatientEligibility:
        row = session.get(PatientEligibility, require_id(patient_id, "patient_id"), with_for_update=lock or None)
        status = row.intake_status if row else "unknown"
        if status != "approved":
            raise Conflict(f"the patient's intake is not approved (intake status: {status}); "
                           "treatment is scheduled only after a clinician approves the intake",
                           {"intake_status": status})
        if row.treatment_consent == "withdrawn":
            raise Conflict("the patient has withdrawn consent to treatment", {"treatment_consent": "withdrawn"})
        if route_code == domain.ESKETAMINE and not row.rems_enrollment_id:
            raise Conflict("esketamine needs the patient's Spravato REMS enrollment recorded first",
                           {"rems_enrolled": False})
        return row

    def _check_bookable(self, session, plan: TreatmentPlan) -> None:
        if plan.status != "active":
            raise Conflict(f"the plan is {plan.status}; only an active plan takes appointments")
        # Locking the patient's row serialises bookings of one patient across
        # plans, so the 48-hour spacing check cannot be raced.
        self._check_eligible(session, plan.patient_id, plan.route, lock=True)

    def _plan(self, session, plan_id, lock: bool = False) -> TreatmentPlan:
        plan = session.get(TreatmentPlan, require_id(plan_id, "plan_id"), with_for_update=lock or None)
        if plan is None:
            raise NotFound(f"no treatment plan {plan_id}")
        return plan

    def _appointment(self, session, appointment_id, lock: bool = False) -> Appointment:
        record = session.get(Appointment, require_id(appointment_id, "appointment_id"), with_for_update=lock or None)
        if record is None:
            raise NotFound(f"no appointment {appointment_id}")
        return record

    def _session(self, session, session_id, lock: bool = False) -> SessionRecord:
        record = session.get(SessionRecord, require_id(session_id, "session_id"), with_for_update=lock or None)
        if record is None:
            raise NotFound(f"no session {session_id}")
        return record

    def _resource(self, session, resource_id: str, kind: str) -> Resource:
        record = session.get(Resource, require_id(resource_id, f"{kind}_id"))
        if record is None or record.kind != kind or not record.active:
            raise field_error(f"{kind}_id", f"no active {kind} {resource_id}")
        return record

    def _resource_ids(self, session, kind: str, only: str | None) -> list[str]:
        if only:
            return [self._resource(session, only, kind).resource_id]
        return list(session.execute(sa.select(Resource.resource_id).where(
            Resource.kind == kind, Resource.active.is_(True)).order_by(Resource.name)).scalars())

    def _length(self, route_code: str) -> timedelta:
        rules = self._rules()
        return domain.appointment_length(route_code, rules.hours, rules.slot_minutes_by_route)

    def _check_slot(self, session, plan: TreatmentPlan, starts_at: datetime, chair_id: str, clinician_id: str,
                    moving: str | None = None) -> tuple[datetime, datetime]:
        """Every rule a booking must meet, in Python for a clear message; the
        booking rows' unique key is the guarantee when requests race."""
        hours = self._rules().hours
        self._resource(session, chair_id, "chair")
        self._resource(session, clinician_id, "clinician")
        ends_at = starts_at + self._length(plan.route)
        domain.check_on_grid(starts_at, hours)
        if starts_at <= utcnow():
            raise field_error("starts_at", "must be in the future")
        domain.check_within_hours(starts_at, ends_at, hours)
        domain.check_spacing(starts_at, self._other_session_starts(session, plan.patient_id, moving),
                             plan.min_hours_apart)
        conflicts = self._conflicts(session, plan.patient_id, chair_id, clinician_id, starts_at, ends_at)
        if conflicts:
            raise Conflict("double booking: the " + " and the ".join(c["resource_kind"] for c in conflicts)
                           + " already booked at that time", {"conflicts": conflicts})
        return starts_at, ends_at

    def _other_session_starts(self, session, patient_id: str, moving: str | None = None) -> list[datetime]:
        return [as_utc(s) for s in session.execute(sa.select(Appointment.starts_at).where(
            Appointment.patient_id == patient_id,
            Appointment.status.in_([s.value for s in domain.HOLDING]),
            Appointment.appointment_id != (moving or ""))).scalars()]

    def _conflicts(self, session, patient_id, chair_id, clinician_id, starts_at, ends_at) -> list[dict]:
        slots = domain.slot_starts(starts_at, ends_at, self._rules().hours.slot_minutes)
        rows = session.execute(
            sa.select(ResourceBooking.resource_kind, ResourceBooking.appointment_id).where(
                sa.or_(sa.and_(ResourceBooking.resource_kind == "patient", ResourceBooking.resource_id == patient_id),
                       sa.and_(ResourceBooking.resource_kind == "chair", ResourceBooking.resource_id == chair_id),
                       sa.and_(ResourceBooking.resource_kind == "clinician",
                               ResourceBooking.resource_id == clinician_id)),
                ResourceBooking.slot_start.in_(slots)).distinct()).all()
        return [{"resource_kind": kind, "appointment_id": appointment_id} for kind, appointment_id in rows]

    def _book(self, uow, plan: TreatmentPlan, starts_at, chair_id, clinician_id, kind,
              course_id: str | None = None) -> Appointment:
        starts, ends = self._check_slot(uow.session, plan, starts_at, chair_id, clinician_id)
        holding = [s.value for s in domain.HOLDING]
        # Numbered in booking order and never reused by a live appointment;
        # a cancelled or aborted induction session leaves room for another.
        last = uow.session.execute(sa.select(sa.func.max(Appointment.sequence)).where(
            Appointment.plan_id == plan.plan_id, Appointment.status.in_(holding))).scalar_one()
        inductions = uow.session.execute(sa.select(sa.func.count()).select_from(Appointment).where(
            Appointment.plan_id == plan.plan_id, Appointment.kind == "induction",
            Appointment.status.in_(holding))).scalar_one()
        record = Appointment(plan_id=plan.plan_id, patient_id=plan.patient_id, route=plan.route,
                             kind=kind or ("induction" if inductions < plan.induction_sessions else "maintenance"),
                             sequence=(last or 0) + 1, starts_at=starts, ends_at=ends, chair_id=chair_id,
                             clinician_id=clinician_id, booked_by=self.db.actor)
        uow.session.add(record)
        self._hold(uow.session, record)
        uow.emit("appointment.scheduled", {
            "patient_id": record.patient_id, "appointment_id": record.appointment_id, "plan_id": plan.plan_id,
            "kind": record.kind, "sequence": record.sequence, "starts_at": iso(starts), "ends_at": iso(ends),
            "route": record.route, "chair_id": chair_id, "clinician_id": clinician_id,
            # Set when booked as part of a course: the course.booked event then speaks for it.
            "course_id": course_id,
        })
        return record

    def _hold(self, session, record: Appointment) -> None:
        session.flush()
        slots = domain.slot_starts(as_utc(record.starts_at), as_utc(record.ends_at), self._rules().hours.slot_minutes)
        # Inserted in one global order (kind, resource, time) so two
        # overlapping bookings wait on each other instead of deadlocking.
        for kind, resource_id, slot in sorted(
                (kind, resource_id, slot) for slot in slots
                for kind, resource_id in (("patient", record.patient_id), ("chair", record.chair_id),
                                          ("clinician", record.clinician_id))):
            session.add(ResourceBooking(resource_kind=kind, resource_id=resource_id, slot_start=slot,
                                        appointment_id=record.appointment_id))
        flush_or_conflict(session, "double booking: the patient, chair or clinician was booked at that time "
                                   "by another request a moment ago")

    def _course_starts(self, session, plan: TreatmentPlan, given) -> list[datetime]:
        rules = self._rules()
        already = session.execute(sa.select(sa.func.count()).select_from(Appointment).where(
            Appointment.plan_id == plan.plan_id, Appointment.kind == "induction",
            Appointment.status.in_([s.value for s in domain.HOLDING]))).scalar_one()
        sessions = given.sessions or plan.induction_sessions - already
        if sessions < 1:
            raise Conflict("the plan's induction course is already fully booked")
        course = domain.CourseRules(plan.induction_sessions, plan.min_hours_apart, rules.course.max_course_days)
        if given.first_starts_at <= utcnow():
            raise field_error("first_starts_at", "must be in the future")
        domain.check_on_grid(given.first_starts_at, rules.hours)
        return domain.propose_course(given.first_starts_at, sessions, rules.hours, course, self._length(plan.route))

    def _apply_checklist(self, uow, record: SessionRecord, appointment: Appointment, given,
                         measured_at: datetime | None = None) -> None:
        for name in ("fasting_confirmed", "escort_confirmed", "weight_kg", "pre_phq9", "mood_score"):
            value = getattr(given, name)
            if value is not None:
                setattr(record, name, value)
        if given.pre_phq9 is not None:
            # A corrected pre-session score replaces the first one.
            uow.session.execute(sa.delete(PHQ9Score).where(PHQ9Score.session_id == record.session_id))
            uow.session.add(PHQ9Score(plan_id=record.plan_id, session_id=record.session_id, total=given.pre_phq9,
                                      recorded_at=measured_at or utcnow()))
        if given.baseline_vitals is not None:
            baseline = given.baseline_vitals.model_dump()
            record.baseline_vitals = baseline
            # Also a reading: it is the blood pressure before dosing, and a
            # baseline already past the thresholds must alert too.
            self._add_reading(uow, record, appointment, baseline, measured_at or utcnow())

    def _add_reading(self, uow, record: SessionRecord, appointment: Appointment, measured: dict,
                     recorded_at: datetime) -> VitalsReading:
        alerts = domain.vitals_alerts(measured, self._rules().vitals)
        reading = VitalsReading(session_id=record.session_id, recorded_at=recorded_at, alerts=alerts,
                                recorded_by=self.db.actor, **measured)
        uow.session.add(reading)
        uow.session.flush()
        if alerts:
            # Same unit of work: published right after the commit, so the
            # on-duty clinician hears within a moment.
            eligibility = uow.session.get(PatientEligibility, record.patient_id)
            uow.emit("session.vitals_alert", {
                "patient_id": record.patient_id, "session_id": record.session_id,
                "mrn": eligibility.mrn if eligibility else None, "chair_id": appointment.chair_id,
                "clinician_id": appointment.clinician_id, "recorded_at": iso(recorded_at), "alerts": alerts,
            })
            # Ids and a count only: the measures stay out of the logs.
            log.warning("vitals alert in session %s: %d threshold(s) breached", record.session_id, len(alerts))
        return reading

    def _readings(self, session, record: SessionRecord) -> list[VitalsReading]:
        return list(session.execute(sa.select(VitalsReading).where(VitalsReading.session_id == record.session_id)
                                    .order_by(VitalsReading.recorded_at, VitalsReading.reading_id)).scalars())

    def _open_monitoring_form(self, session, record: SessionRecord, readings, rules: domain.Rules) -> None:
        day = rules.hours.local_date(as_utc(record.started_at))
        serious = session.execute(sa.select(SideEffect.effect).where(
            SideEffect.session_id == record.session_id, SideEffect.serious.is_(True))).scalars().all()
        session.add(MonitoringForm(
            session_id=record.session_id, patient_id=record.patient_id, session_date=day,
            due_on=domain.monitoring_form_due(day, rules.monitoring_form_days),
            content={"dose_mg": record.dose_mg, "lot_number": record.lot_number,
                     "monitoring_minutes": domain.minutes_between(as_utc(record.started_at),
                                                                  as_utc(record.discharged_at)),
                     "vitals": [reading_view(r) for r in readings],
                     "serious_adverse_events": sorted(set(serious))},
        ))

    def _complete_course_if_done(self, uow, plan: TreatmentPlan) -> None:
        done = uow.session.execute(sa.select(sa.func.count()).select_from(Appointment).where(
            Appointment.plan_id == plan.plan_id, Appointment.kind == "induction",
            Appointment.status == AppointmentStatus.COMPLETED.value)).scalar_one()
        if done < plan.induction_sessions or plan.course_completed_at is not None:
            return
        plan.course_completed_at = utcnow()
        summary = self._course_summary(uow.session, plan)
        uow.emit("course.completed", {
            "patient_id": plan.patient_id, "plan_id": plan.plan_id, "sessions_completed": done,
            **{k: summary[k] for k in ("baseline_phq9", "final_phq9", "change_percent", "response", "remission")},
        })

    def _course_summary(self, session, plan: TreatmentPlan) -> dict:
        scores = session.execute(sa.select(PHQ9Score).where(PHQ9Score.plan_id == plan.plan_id)
                                 .order_by(PHQ9Score.recorded_at, PHQ9Score.id)).scalars().all()
        baseline = plan.baseline_phq9 if plan.baseline_phq9 is not None else (scores[0].total if scores else None)
        # With the intake score as baseline every later score counts; without
        # it the first pre-session score is the baseline, not an outcome.
        later = scores if plan.baseline_phq9 is not None else scores[1:]
        outcome = domain.course_outcome(baseline, later[-1].total if later else None)
        completed, last_start = session.execute(
            sa.select(sa.func.count(), sa.func.max(Appointment.starts_at)).where(
                Appointment.plan_id == plan.plan_id,
                Appointment.status == AppointmentStatus.COMPLETED.value)).one()
        next_due = None
        if plan.course_completed_at is not None and plan.maintenance_interval_days and last_start is not None:
            last_day = self._rules().hours.local_date(as_utc(last_start))
            next_due = domain.next_maintenance_due(last_day, plan.maintenance_interval_days).isoformat()
        return {"plan_id": plan.plan_id, "sessions_completed": completed,
                "induction_sessions": plan.induction_sessions,
                "course_completed_at": iso(plan.course_completed_at),
                "maintenance_interval_days": plan.maintenance_interval_days, "next_maintenance_due": next_due,
                "phq9": [{"total": s.total, "recorded_at": iso(s.recorded_at), "session_id": s.session_id}
                         for s in scores],
                "baseline_phq9": outcome.baseline_phq9, "final_phq9": outcome.final_phq9,
                "change_percent": outcome.change_percent, "response": outcome.response,
                "remission": outcome.remission}

    def _signature_facts(self, session, record: SessionRecord) -> dict:
        started_at = as_utc(record.started_at)
        during = [r for r in self._readings(session, record)
                  if started_at is not None and as_utc(r.recorded_at) > started_at]
        return {**checklist_facts(record), "pre_session_score": record.pre_phq9 is not None
                or record.mood_score is not None, "status": record.status, "route": record.route,
                "drug": record.drug, "dose_mg": record.dose_mg, "lot_number": record.lot_number,
                "started_at": record.started_at, "ended_at": record.ended_at,
                "vitals_during_session": bool(during), "dissociation_score": record.dissociation_score,
                "discharged_at": record.discharged_at, "sedation_checked": record.sedation_checked,
                "aborted_at": record.aborted_at, "abort_reason_code": record.abort_reason_code}

    def _session_view(self, session, record: SessionRecord) -> dict:
        readings = self._readings(session, record)
        effects = session.execute(sa.select(SideEffect).where(SideEffect.session_id == record.session_id)
                                  .order_by(SideEffect.recorded_at)).scalars()
        addenda = session.execute(sa.select(Addendum).where(Addendum.session_id == record.session_id)
                                  .order_by(Addendum.written_at)).scalars()
        form = session.execute(sa.select(MonitoringForm).where(
            MonitoringForm.session_id == record.session_id)).scalar_one_or_none()
        return {
            "session_id": record.session_id, "appointment_id": record.appointment_id, "plan_id": record.plan_id,
            "patient_id": record.patient_id, "status": record.status, "checked_in_at": iso(record.checked_in_at),
            "checklist": {"fasting_confirmed": record.fasting_confirmed, "escort_confirmed": record.escort_confirmed,
                          "weight_kg": record.weight_kg, "baseline_vitals": record.baseline_vitals,
                          "pre_phq9": record.pre_phq9, "mood_score": record.mood_score,
                          "missing": domain.missing_checklist_items(checklist_facts(record))},
            "route": record.route, "drug": record.drug, "dose_mg": record.dose_mg, "lot_number": record.lot_number,
            "started_at": iso(record.started_at), "ended_at": iso(record.ended_at),
            "duration_minutes": domain.minutes_between(as_utc(record.started_at), as_utc(record.ended_at)),
            "vitals": [reading_view(r) for r in readings],
            "monitoring_gaps": [{"from": iso(a), "to": iso(b), "minutes": domain.minutes_between(a, b)}
                                for a, b in domain.monitoring_gaps(
                                    as_utc(record.started_at), as_utc(record.ended_at),
                                    [as_utc(r.recorded_at) for r in readings])] if record.started_at else [],
            "dissociation": {"scale": record.dissociation_scale, "score": record.dissociation_score},
            "sedation_checked": record.sedation_checked,
            "side_effects": [side_effect_view(e) for e in effects],
            "discharged_at": iso(record.discharged_at), "discharge": record.discharge,
            "aborted_at": iso(record.aborted_at), "abort_reason_code": record.abort_reason_code,
            "abort_note": record.abort_note,
            "signed_by": record.signed_by, "signed_at": iso(record.signed_at),
            "addenda": [addendum_view(a) for a in addenda],
            "monitoring_form_id": form.form_id if form else None,
        }


# ------------------------------------------------------------------ helpers


def newer(occurred_at: datetime, as_of: datetime | None) -> bool:
    return as_of is None or occurred_at > as_utc(as_of)


def actor_role(actor: str | None) -> str | None:
    """``"user (role)"`` as the gateway sends it."""
    if not actor or not actor.endswith(")") or "(" not in actor:
        return None
    return actor.rsplit("(", 1)[1][:-1].strip()


def parse_day(value) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise field_error("date", "must be a date such as 2026-11-24") from None


def not_future(moment: datetime | None, field_name: str) -> datetime:
    now = utcnow()
    if moment is None:
        return now
    if moment > now + FUTURE_TOLERANCE:
        raise field_error(field_name, "must not be in the future")
    return moment


def flush_or_conflict(session, message: str) -> None:
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(message) from None


def checklist_facts(record: SessionRecord) -> dict:
    return {"fasting_confirmed": record.fasting_confirmed, "escort_confirmed": record.escort_confirmed,
            "weight_kg": record.weight_kg, "baseline_vitals": record.baseline_vitals,
            "pre_phq9": record.pre_phq9, "mood_score": record.mood_score}


def resource_names(session) -> dict[str, str]:
    return dict(session.execute(sa.select(Resource.resource_id, Resource.name)).all())

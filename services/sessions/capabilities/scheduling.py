"""Booking chairs and clinicians: single appointments and whole induction
courses, rescheduling, cancellation, no-shows, the day view and free slots.
The booking rows' unique key is what keeps two racing bookings apart."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from common import idempotency
from common.etag import check_if_match
from common.errors import Conflict, field_error
from common.events import as_utc, iso, utcnow
from common.handlers import rpc
from common.validation import paging, parse, require_id
from services.sessions import domain, events, schemas
from services.sessions.capabilities.chart import (NOT_CHECKED_IN, Chart, actor_role, flush_or_conflict, parse_day,
                                                  session_states)
from services.sessions.capabilities.front_desk import close_tasks_answered_by_booking, open_no_show_task
from services.sessions.domain import AppointmentStatus
from services.sessions.models import Appointment, PatientEligibility, Resource, ResourceBooking, TreatmentPlan
from services.sessions.schemas import appointment_view


class Scheduling(Chart):

    @rpc
    def book_appointment(self, booking, idempotency_key=None):
        given = parse(schemas.BookingInput, booking)
        with self.db.unit_of_work() as uow:
            claim = idempotency.claim(uow, "book_appointment", idempotency_key, given)
            if claim.replayed:
                self._audit(uow, claim.answer["patient_id"], "appointment_book_replayed", claim.answer["appointment_id"])
                return claim.answer
            plan = self._plan(uow.session, given.plan_id, lock=True)
            self._check_bookable(uow.session, plan)
            record = self._book(uow, plan, given.starts_at, given.chair_id, given.clinician_id, given.kind)
            self._audit(uow, record.patient_id, "appointment_book", record.appointment_id)
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
                self._audit(uow, claim.answer["appointments"][0]["patient_id"], "course_book_replayed",
                            claim.answer["course_id"])
                return claim.answer
            plan = self._plan(uow.session, plan_id, lock=True)
            self._check_bookable(uow.session, plan)
            course_id = str(uuid.uuid4())
            booked = [self._book(uow, plan, start, given.chair_id, given.clinician_id, "induction", course_id)
                      for start in self._course_starts(uow.session, plan, given)]
            # One fact for the whole course, so the patient is told once,
            # with every date, rather than once per appointment.
            uow.emit(events.CourseBooked(
                patient_id=plan.patient_id, plan_id=plan.plan_id, course_id=course_id,
                route=plan.route, chair_id=given.chair_id, clinician_id=given.clinician_id,
                appointments=[{"appointment_id": a.appointment_id, "sequence": a.sequence,
                                  "starts_at": iso(a.starts_at), "ends_at": iso(a.ends_at)} for a in booked],
            ))
            self._audit(uow, plan.patient_id, "course_book", course_id)
            view = {"plan_id": plan.plan_id, "course_id": course_id,
                    "appointments": [appointment_view(a) for a in booked]}
            return claim.remember(view)

    @rpc
    def reschedule_appointment(self, appointment_id, change, if_match=None):
        given = parse(schemas.RescheduleInput, change)
        with self.db.unit_of_work() as uow:
            record = self._appointment(uow.session, appointment_id, lock=True)
            check_if_match(if_match, appointment_view(record))
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
            uow.emit(events.AppointmentRescheduled(
                patient_id=record.patient_id, appointment_id=record.appointment_id,
                previous_starts_at=previous, starts_at=starts, ends_at=ends,
                route=record.route, chair_id=chair_id, clinician_id=clinician_id,
            ))
            return appointment_view(record)

    @rpc
    def cancel_appointment(self, appointment_id, if_match=None):
        with self.db.unit_of_work() as uow:
            record = self._appointment(uow.session, appointment_id, lock=True)
            check_if_match(if_match, appointment_view(record))
            domain.check_appointment_move(AppointmentStatus(record.status), "cancel")
            now = utcnow()
            record.status = AppointmentStatus.CANCELLED.value
            record.cancelled_at = now
            record.late_cancellation = domain.is_late_cancellation(
                as_utc(record.starts_at), now, self._rules().late_cancellation_hours)
            record.cancelled_by_role = actor_role(self.db.actor) or "system"
            uow.session.execute(sa.delete(ResourceBooking).where(ResourceBooking.appointment_id == record.appointment_id))
            uow.emit(events.AppointmentCancelled(
                patient_id=record.patient_id, appointment_id=record.appointment_id,
                starts_at=record.starts_at, cancelled_at=now,
                late=record.late_cancellation, cancelled_by_role=record.cancelled_by_role,
            ))
            return appointment_view(record)

    @rpc
    def mark_no_show(self, appointment_id, if_match=None):
        with self.db.unit_of_work() as uow:
            record = self._appointment(uow.session, appointment_id, lock=True)
            check_if_match(if_match, appointment_view(record))
            domain.check_appointment_move(AppointmentStatus(record.status), "no_show")
            if as_utc(record.starts_at) > utcnow():
                raise Conflict("an appointment cannot be marked a no-show before it starts")
            record.status = AppointmentStatus.NO_SHOW.value
            uow.emit(events.AppointmentNoShow(
                patient_id=record.patient_id, appointment_id=record.appointment_id,
                starts_at=record.starts_at, route=record.route,
            ))
            open_no_show_task(uow, record)
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
            states = session_states(session, [r.appointment_id for r in rows])
            items = []
            for row in rows:
                patient = patients.get(row.patient_id)
                items.append({**appointment_view(row),
                              "mrn": patient.mrn if patient else None,
                              "patient_name": " ".join(filter(None, (patient.given_name, patient.family_name)))
                              if patient else None,
                              "chair": names.get(row.chair_id), "clinician": names.get(row.clinician_id),
                              **states.get(row.appointment_id, NOT_CHECKED_IN)})
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

    def _check_bookable(self, session, plan: TreatmentPlan) -> None:
        if plan.status != "active":
            raise Conflict(f"the plan is {plan.status}; only an active plan takes appointments")
        # Locking the patient's row serialises bookings of one patient across
        # plans, so the 48-hour spacing check cannot be raced.
        self._check_eligible(session, plan.patient_id, plan.route, lock=True)

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
        uow.emit(events.AppointmentScheduled(
            patient_id=record.patient_id, appointment_id=record.appointment_id, plan_id=plan.plan_id,
            kind=record.kind, sequence=record.sequence, starts_at=starts, ends_at=ends,
            route=record.route, chair_id=chair_id, clinician_id=clinician_id,
            # Set when booked as part of a course: the course.booked event then speaks for it.
            course_id=course_id,
        ))
        close_tasks_answered_by_booking(uow, record, self.db.actor)
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


def resource_names(session) -> dict[str, str]:
    return dict(session.execute(sa.select(Resource.resource_id, Resource.name)).all())

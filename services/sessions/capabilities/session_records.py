"""The monitored session record: check-in and its checklist, the dose,
vitals (with alerts), observations and side effects, then signing,
addenda, reading and the FHIR export. Discharge and abort are in
``discharge``."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa

from common import idempotency
from common.etag import check_if_match
from common.errors import Conflict, field_error
from common.events import as_utc, utcnow
from common.handlers import rpc
from common.validation import parse
from services.sessions import domain, events, fhir, schemas
from services.sessions.capabilities.chart import Chart, flush_or_conflict, not_future
from services.sessions.domain import AppointmentStatus, SessionStatus
from services.sessions.models import (
    Addendum, Appointment, OutcomeScore, PatientEligibility, Resource, SessionRecord, SideEffect, VitalsReading,
)
from services.sessions.schemas import addendum_view, checklist_facts, reading_view, side_effect_view
from services.sessions.trajectory import ScoreSource

log = logging.getLogger(__name__)

# How far back a check-in may be charted after the fact.
CHARTING_WINDOW = timedelta(hours=12)


class SessionRecords(Chart):

    @rpc
    def check_in(self, appointment_id, checklist, idempotency_key=None):
        given = parse(schemas.CheckInInput, checklist)
        checked_in_at = not_future(given.checked_in_at, "checked_in_at")
        if utcnow() - checked_in_at > CHARTING_WINDOW:
            raise field_error("checked_in_at", f"must be within the last {CHARTING_WINDOW.seconds // 3600} hours")
        with self.db.unit_of_work() as uow:
            claim = idempotency.claim(uow, "check_in", idempotency_key, appointment_id, given)
            if claim.replayed:
                self._audit(uow, claim.answer["patient_id"], "check_in_replayed", claim.answer["session_id"])
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
            uow.emit(events.SessionCheckedIn(
                patient_id=record.patient_id, session_id=record.session_id,
                appointment_id=appointment.appointment_id, checked_in_at=record.checked_in_at,
            ))
            return claim.remember(self._session_view(uow.session, record))

    @rpc
    def update_checklist(self, session_id, checklist, if_match=None):
        given = parse(schemas.Checklist, checklist)
        with self.db.unit_of_work() as uow:
            record = self._session_for(uow.session, session_id, "update_checklist", if_match)
            self._apply_checklist(uow, record, self._appointment(uow.session, record.appointment_id), given)
            self._audit(uow, record.patient_id, "checklist", record.session_id)
            return self._session_view(uow.session, record)

    @rpc
    def start_session(self, session_id, start, if_match=None):
        given = parse(schemas.StartInput, start)
        self._require_clinician("start a session")
        started_at = not_future(given.started_at, "started_at")
        with self.db.unit_of_work() as uow:
            record = self._session_for(uow.session, session_id, "start", if_match)
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
            uow.emit(events.SessionStarted(
                patient_id=record.patient_id, session_id=record.session_id,
                appointment_id=record.appointment_id, route=record.route, drug=record.drug,
                dose_mg=record.dose_mg, started_at=started_at,
            ))
            return self._session_view(uow.session, record)

    @rpc
    def record_vitals(self, session_id, vitals, idempotency_key=None):
        given = parse(schemas.VitalsInput, vitals)
        recorded_at = not_future(given.recorded_at, "recorded_at")
        with self.db.unit_of_work() as uow:
            claim = idempotency.claim(uow, "record_vitals", idempotency_key, session_id, given)
            if claim.replayed:
                return self._replayed_on_session(uow, claim, session_id, "vitals")
            record = self._session_for(uow.session, session_id, "record")
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
            record = self._session_for(uow.session, session_id, "record")
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
                return self._replayed_on_session(uow, claim, session_id, "side_effect")
            record = self._session_for(uow.session, session_id, "record")
            entry = SideEffect(session_id=record.session_id, effect=given.effect, severity=given.severity,
                               serious=given.serious, intervention=given.intervention, recorded_at=recorded_at,
                               recorded_by=self.db.actor)
            uow.session.add(entry)
            uow.session.flush()
            self._audit(uow, record.patient_id, "side_effect", record.session_id)
            return claim.remember(side_effect_view(entry))

    @rpc
    def sign_session(self, session_id, if_match=None):
        actor = self._require_clinician("sign a session record")
        with self.db.unit_of_work() as uow:
            record = self._session(uow.session, session_id, lock=True)
            if if_match is not None:
                check_if_match(if_match, self._session_view(uow.session, record))
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
                return self._replayed_on_session(uow, claim, session_id, "addendum")
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
        with self.db.audited_read() as uow:
            return self._read_session_view(uow, session_id)

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

    def _apply_checklist(self, uow, record: SessionRecord, appointment: Appointment, given,
                         measured_at: datetime | None = None) -> None:
        for name in ("fasting_confirmed", "escort_confirmed", "weight_kg", "pre_phq9", "pre_gad7", "mood_score"):
            value = getattr(given, name)
            if value is not None:
                setattr(record, name, value)
        for instrument, total in (("phq9", given.pre_phq9), ("gad7", given.pre_gad7)):
            if total is None:
                continue
            # A corrected pre-session score replaces the first one.
            uow.session.execute(sa.delete(OutcomeScore).where(OutcomeScore.session_id == record.session_id,
                                                              OutcomeScore.instrument == instrument))
            uow.session.add(OutcomeScore(plan_id=record.plan_id, session_id=record.session_id, instrument=instrument,
                                         source=ScoreSource.STAFF.value, total=total,
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
            uow.emit(events.SessionVitalsAlert(
                patient_id=record.patient_id, session_id=record.session_id,
                mrn=eligibility.mrn if eligibility else None, chair_id=appointment.chair_id,
                clinician_id=appointment.clinician_id, recorded_at=recorded_at, alerts=alerts,
            ))
            # Ids and a count only: the measures stay out of the logs.
            log.warning("vitals alert in session %s: %d threshold(s) breached", record.session_id, len(alerts))
        return reading

    def _readings(self, session, record: SessionRecord) -> list[VitalsReading]:
        return list(session.execute(sa.select(VitalsReading).where(VitalsReading.session_id == record.session_id)
                                    .order_by(VitalsReading.recorded_at, VitalsReading.reading_id)).scalars())

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

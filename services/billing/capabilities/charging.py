"""Charges: raised from other services' events (the consultation when an
intake is approved, a session's infusion hours and drug, late-cancellation
and no-show fees), added and voided by billing staff, listed, and priced
from the fee schedule."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timezone

import sqlalchemy as sa

from common import idempotency
from common.errors import Conflict, field_error
from common.events import as_utc, utcnow
from common.handlers import consumes, on_every_replica, rpc
from common.validation import parse, require_id
from services.billing import domain, schemas
from services.billing.events import FeeScheduleChanged
from services.intake.events import IntakeApproved
from services.sessions.events import AppointmentCancelled, AppointmentNoShow, SessionAborted, SessionCompleted
from services.billing.capabilities.ledger import NEVER, Ledger, page
from services.billing.models import Charge, FeePrice, Package, PackageUse, RecordAccess, new_id

log = logging.getLogger(__name__)

APPOINTMENT_FEES = ("late_cancellation", "no_show")


class Charging(Ledger):

    # ------------------------------------------------- facts from intake

    @consumes(IntakeApproved)
    def on_intake_approved(self, uow, event):
        """The initial consultation (90791) on the day of the decision."""
        facts = event.data
        patient = self._patient_copy(uow.session, facts.patient_id)
        if as_utc(patient.diagnoses_as_of or NEVER) < event.occurred_at:
            patient.diagnosis_codes = [code.upper() for code in facts.diagnosis_codes]
            patient.diagnoses_as_of = event.occurred_at
            patient.mrn = facts.mrn or patient.mrn
        if self._already_charged(uow.session, "intake_approval", facts.patient_id):
            return
        self._raise_charges(uow.session, facts.patient_id, [domain.ChargeLine(self.settings.rules.consultation_code)],
                            on=facts.decided_at.astimezone(timezone.utc).date(), source="intake_approval",
                            source_ref=facts.patient_id, clinician_id=facts.decided_by, actor="event:intake.approved")

    # ----------------------------------------------- facts from sessions

    # Several sessions per call when events queue up (a clinic day's
    # completions arriving together): read, lock and write for all of them
    # in a few statements.
    @consumes(SessionCompleted, many=True)
    def on_session_completed(self, uow, events):
        self._charge_sessions(uow.session, [BillableSession.completed(event.data) for event in events])

    @consumes(SessionAborted, many=True)
    def on_session_aborted(self, uow, events):
        """A session stopped early is billed for what was given; one stopped
        before dosing is not billed at all."""
        self._charge_sessions(uow.session, [BillableSession.aborted(event.data) for event in events
                                            if event.data.dose_mg is not None and event.data.started_at is not None])

    @consumes(AppointmentCancelled)
    def on_appointment_cancelled(self, uow, event):
        if event.data.late:
            self._appointment_fee(uow.session, event.data, "late_cancellation",
                                  self.settings.rules.late_cancellation_code)

    @consumes(AppointmentNoShow)
    def on_appointment_no_show(self, uow, event):
        self._appointment_fee(uow.session, event.data, "no_show", self.settings.rules.no_show_code)

    # ------------------------------------------------ charges by hand

    @rpc
    def add_charge(self, patient_id, charge, idempotency_key=None):
        """A charge billing staff add by hand, e.g. a 99214/99215 visit."""
        given = parse(schemas.ChargeInput, charge)
        patient_id = require_id(patient_id, "patient_id")
        with self.db.unit_of_work() as uow:
            claim = idempotency.claim(uow, "add_charge", idempotency_key, patient_id, given)
            if claim.replayed:
                RecordAccess.record(uow, patient_id, "charge_replayed")
                return claim.answer
            RecordAccess.record(uow, patient_id, "charge")
            price = self._price(uow.session, given.code, given.date_of_service)
            if price.package_route:
                raise field_error("code", "a package is sold with sell_package, not charged by hand")
            [record] = self._raise_charges(
                uow.session, patient_id, [domain.ChargeLine(given.code, given.units)], on=given.date_of_service,
                source="manual", source_ref=new_id(), clinician_id=given.clinician_id, actor=self.db.actor)
            return claim.remember(schemas.charge_view(record))

    @rpc
    def void_charge(self, charge_id, void):
        given = parse(schemas.VoidInput, void)
        with self.db.unit_of_work() as uow:
            record = self._lock(uow.session, Charge, Charge.charge_id, charge_id, "charge")
            if record.status != "open":
                raise Conflict(f"only an open charge can be voided; this one is {record.status}"
                               + (" (void its invoice first)" if record.status == "invoiced" else ""))
            if record.source == "package_sale":
                raise Conflict("a package sale is undone by refunding the package")
            if record.package_id:
                self._return_package_session(uow.session, record)
            record.status, record.voided_at, record.voided_by = "void", utcnow(), self.db.actor
            record.void_reason = given.reason
            return schemas.charge_view(record)

    @rpc
    def list_charges(self, patient_id, criteria=None):
        search = parse(schemas.ChargeFilter, criteria or {})
        patient_id = require_id(patient_id, "patient_id")
        query = sa.select(Charge).where(Charge.patient_id == patient_id)
        if search.status:
            query = query.where(Charge.status == search.status)
        with self.db.unit_of_work() as uow:
            RecordAccess.record(uow, patient_id, "read_charges")
            return page(uow.session, query.order_by(Charge.date_of_service, Charge.created_at, Charge.charge_id),
                        search, schemas.charge_view)

    @rpc
    def list_fee_schedule(self, on_date=None):
        """The price of every code in force on a date (today by default)."""
        try:
            on = date.fromisoformat(on_date) if on_date else utcnow().date()
        except (TypeError, ValueError):
            raise field_error("on_date", "must be a date, YYYY-MM-DD") from None
        with self.db.read() as session:
            rows = session.execute(sa.select(FeePrice).where(FeePrice.effective_from <= on)
                                   .order_by(FeePrice.code, FeePrice.effective_from)).scalars().all()
            current = {row.code: row for row in rows}  # the last per code is the one in force
            return {"on_date": on.isoformat(), "currency": self.settings.rules.currency,
                    "items": [schemas.fee_view(row) for row in current.values()]}

    @on_every_replica(FeeScheduleChanged)
    def on_fee_schedule_changed(self, event):
        """Another process stored new prices: this one reads them on next use."""
        self.fee_schedule.invalidate()
        log.info("fee schedule changed (%d new price(s)); the kept prices are dropped", event.data.prices_added)

    # ----------------------------------------------------------- helpers

    def _charge_sessions(self, session, sessions: "list[BillableSession]") -> None:
        # A replay under a new event id must not bill a session again.
        if not sessions:
            return
        seen = self._sessions_charged(session, [facts.session_id for facts in sessions])
        fresh = []
        for facts in sessions:
            if facts.session_id not in seen:
                seen.add(facts.session_id)
                fresh.append(facts)
        sessions = fresh
        if not sessions:
            return
        packages = self._covering_packages(session, {(facts.patient_id, facts.route) for facts in sessions})
        raised = []
        for facts in sessions:
            lines = domain.session_lines(
                domain.CompletedSession(facts.route, facts.drug, facts.dose_mg, facts.minutes), self.settings.rules)
            charges = self._priced_charges(
                session, facts.patient_id, lines, on=facts.date_of_service, source="session",
                source_ref=facts.session_id, appointment_id=facts.appointment_id, session_id=facts.session_id,
                clinician_id=facts.clinician_id, actor="event:session")
            package = next((candidate for candidate in packages.get((facts.patient_id, facts.route), ())
                            if package_balance(candidate).covers(facts.route)), None)
            if package is not None:
                balance = package_balance(package)
                balance.consume()
                package.sessions_used, package.status = balance.sessions_used, balance.status.value
                session.add(PackageUse(package_id=package.package_id, session_id=facts.session_id,
                                       date_of_service=facts.date_of_service))
                for charge in charges:
                    charge.package_id = package.package_id
            raised.extend(charges)
            log.info("session %s charged: %d line(s)%s", facts.session_id, len(charges),
                     " from a package" if package is not None else "")
        # One multi-row INSERT for every session's charges.
        session.add_all(raised)
        session.flush()
        # The patient came: a late-cancel or no-show fee for the appointment
        # (a mistaken mark, or an event that arrived late) goes.
        appointments = {facts.appointment_id for facts in sessions if facts.appointment_id}
        if appointments:
            session.execute(sa.update(Charge).where(
                Charge.appointment_id.in_(appointments), Charge.source.in_(APPOINTMENT_FEES),
                Charge.status == "open").values(
                status="void", voided_at=utcnow(), voided_by="event:session",
                void_reason="the session for this appointment took place"
            ).execution_options(synchronize_session=False))

    def _sessions_charged(self, session, session_ids: list[str]) -> set[str]:
        return set(session.execute(sa.select(Charge.source_ref).where(
            Charge.source == "session", Charge.source_ref.in_(session_ids)).distinct()).scalars())

    def _already_charged(self, session, source: str, source_ref: str) -> bool:
        return session.execute(sa.select(Charge.charge_id).where(
            Charge.source == source, Charge.source_ref == source_ref).limit(1)).first() is not None

    def _appointment_fee(self, session, facts, source: str, code: str) -> None:
        # One fee per appointment, and none if the session took place after all.
        taken = session.execute(sa.select(Charge.charge_id).where(
            Charge.appointment_id == facts.appointment_id,
            sa.or_(Charge.source == "session", Charge.source.in_(APPOINTMENT_FEES))).limit(1)).first()
        if taken:
            return
        self._raise_charges(session, facts.patient_id, [domain.ChargeLine(code)],
                            on=facts.starts_at.astimezone(timezone.utc).date(), source=source,
                            source_ref=facts.appointment_id, appointment_id=facts.appointment_id,
                            actor=f"event:{source}")

    def _covering_packages(self, session, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], list[Package]]:
        """The packages that can cover a session, per (patient, route),
        oldest first, locked so two sessions cannot take a last use."""
        found: dict[tuple[str, str], list[Package]] = {}
        for package in session.execute(sa.select(Package).where(
                sa.tuple_(Package.patient_id, Package.route).in_(sorted(wanted)),
                Package.status == domain.PackageStatus.ACTIVE.value, Package.sessions_used < Package.sessions_total,
        ).order_by(Package.sold_at, Package.package_id).with_for_update()).scalars():
            found.setdefault((package.patient_id, package.route), []).append(package)
        return found

    def _return_package_session(self, session, charge: Charge) -> None:
        """Voiding the last covered charge of a session gives its use back."""
        others = session.execute(sa.select(Charge.charge_id).where(
            Charge.source == "session", Charge.source_ref == charge.source_ref, Charge.status != "void",
            Charge.charge_id != charge.charge_id)).first()
        if others:
            return
        package = self._lock(session, Package, Package.package_id, charge.package_id, "package")
        use = session.execute(sa.select(PackageUse).where(PackageUse.session_id == charge.source_ref)).scalar_one_or_none()
        if use is not None and package.status != domain.PackageStatus.REFUNDED.value:
            session.delete(use)
            package.sessions_used -= 1
            package.status = domain.PackageStatus.ACTIVE.value


def package_balance(package: Package) -> domain.PackageBalance:
    return domain.PackageBalance(package.sessions_total, package.sessions_used,
                                 domain.PackageStatus(package.status), package.route)


@dataclass(frozen=True)
class BillableSession:
    """What billing charges for a session, from either way it ended."""

    session_id: str
    patient_id: str
    appointment_id: str | None
    route: str
    drug: str
    dose_mg: float | None
    minutes: int
    date_of_service: date
    clinician_id: str | None = None

    @classmethod
    def completed(cls, facts: SessionCompleted) -> "BillableSession":
        return cls(facts.session_id, facts.patient_id, facts.appointment_id, facts.route, facts.drug,
                   facts.dose_mg, facts.duration_minutes, facts.date_of_service, facts.clinician_id)

    @classmethod
    def aborted(cls, facts: SessionAborted) -> "BillableSession":
        """Billed like a completed session that ended when it was stopped."""
        minutes = facts.duration_minutes
        if minutes is None:
            minutes = max(0, int((facts.aborted_at - facts.started_at).total_seconds() // 60))
        return cls(facts.session_id, facts.patient_id, facts.appointment_id, facts.route, facts.drug,
                   facts.dose_mg, minutes, facts.date_of_service)

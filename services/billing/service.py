"""The billing service's entrypoints: charges raised from other services'
events, invoices, payments, refunds, prepaid packages and superbills. Each
entrypoint validates its input, applies ``domain`` and writes in one unit
of work; events leave through the outbox."""
from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date, datetime, timezone
from pathlib import Path

import jinja2
import sqlalchemy as sa
from pydantic import ValidationError

from common import idempotency
from common.etag import check_if_match
from common.errors import Conflict, NotFound, ValidationFailed, field_error
from common.events import as_utc, iso, utcnow
from common.handlers import consumes, rpc
from common.service import ClinicService
from common.validation import paging, parse, validation_failed
from services.billing import domain, fhir, schemas
from services.billing.dependencies import (
    BillingSettings, FeeScheduleLoader, billing_timer, insert_ignoring_duplicates,
)
from services.billing.models import (
    BillingPatient, Charge, FeePrice, Invoice, InvoiceCounter, InvoiceLine,
    OverdueNotice, Package, PackageUse, Payment, RecordAccess, Refund, new_id,
)

log = logging.getLogger(__name__)

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).resolve().parent / "templates")),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
)
NEVER = datetime(1970, 1, 1, tzinfo=timezone.utc)
OPEN_INVOICE = (domain.InvoiceStatus.ISSUED.value, domain.InvoiceStatus.PARTIALLY_PAID.value)
APPOINTMENT_FEES = ("late_cancellation", "no_show")
OVERDUE_BATCH = 200


class BillingService(ClinicService):
    name = "billing"

    settings = BillingSettings()
    fee_schedule = FeeScheduleLoader()

    # ------------------------------------------------- facts from intake

    @consumes("intake", "patient.registered")
    def on_patient_registered(self, uow, event):
        self._remember_patient(uow.session, event)

    @consumes("intake", "patient.updated")
    def on_patient_updated(self, uow, event):
        self._remember_patient(uow.session, event)

    @consumes("intake", "intake.approved")
    def on_intake_approved(self, uow, event):
        """The initial consultation (90791) on the day of the decision."""
        facts = event_facts(schemas.ApprovalFacts, event.data)
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

    @consumes("sessions", "session.completed")
    def on_session_completed(self, uow, event):
        self._charge_session(uow.session, event_facts(schemas.CompletedSessionFacts, event.data))

    @consumes("sessions", "session.aborted")
    def on_session_aborted(self, uow, event):
        """A session stopped early is billed for what was given; one stopped
        before dosing is not billed at all."""
        facts = event_facts(schemas.AbortedSessionFacts, event.data)
        if facts.dose_mg is None or facts.started_at is None:
            return
        self._charge_session(uow.session, facts.as_billable())

    def _charge_session(self, session, facts: schemas.CompletedSessionFacts) -> None:
        # A replay under a new event id must not bill the session again.
        if self._already_charged(session, "session", facts.session_id):
            return
        try:
            minutes = facts.minutes()
        except ValueError as exc:
            raise field_error("duration_minutes", str(exc)) from None
        lines = domain.session_lines(
            domain.CompletedSession(facts.route, facts.drug, facts.dose_mg, minutes), self.settings.rules)
        package = self._covering_package(session, facts.patient_id, facts.route)
        charges = self._raise_charges(
            session, facts.patient_id, lines, on=facts.date_of_service, source="session",
            source_ref=facts.session_id, appointment_id=facts.appointment_id, session_id=facts.session_id,
            clinician_id=facts.clinician_id, actor="event:session")
        if package is not None:
            balance = package_balance(package)
            balance.consume()
            package.sessions_used, package.status = balance.sessions_used, balance.status.value
            session.add(PackageUse(package_id=package.package_id, session_id=facts.session_id,
                                   date_of_service=facts.date_of_service))
            for charge in charges:
                charge.package_id = package.package_id
        if facts.appointment_id:
            # The patient came: a late-cancel or no-show fee for this
            # appointment (a mistaken mark, or an event that arrived late) goes.
            for fee in session.execute(sa.select(Charge).where(
                    Charge.appointment_id == facts.appointment_id, Charge.source.in_(APPOINTMENT_FEES),
                    Charge.status == "open").with_for_update()).scalars():
                fee.status, fee.voided_at, fee.voided_by = "void", utcnow(), "event:session"
                fee.void_reason = "the session for this appointment took place"
        log.info("session %s charged: %d line(s)%s", facts.session_id, len(charges),
                 " from a package" if package is not None else "")

    @consumes("sessions", "appointment.cancelled")
    def on_appointment_cancelled(self, uow, event):
        facts = event_facts(schemas.MissedAppointmentFacts, event.data)
        if facts.late:
            self._appointment_fee(uow.session, facts, "late_cancellation", self.settings.rules.late_cancellation_code)

    @consumes("sessions", "appointment.no_show")
    def on_appointment_no_show(self, uow, event):
        facts = event_facts(schemas.MissedAppointmentFacts, event.data)
        self._appointment_fee(uow.session, facts, "no_show", self.settings.rules.no_show_code)

    # ----------------------------------------------------------- charges

    @rpc
    def add_charge(self, patient_id, charge, idempotency_key=None):
        """A charge billing staff add by hand, e.g. a 99214/99215 visit."""
        given = parse(schemas.ChargeInput, charge)
        patient_id = required_id("patient_id", patient_id)
        with self.db.unit_of_work() as uow:
            claim = idempotency.claim(uow, "add_charge", idempotency_key, patient_id, given)
            if claim.replayed:
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
        patient_id = required_id("patient_id", patient_id)
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

    # ---------------------------------------------------------- invoices

    @rpc
    def issue_invoice(self, patient_id, request=None, idempotency_key=None):
        """Number and issue an invoice for the patient's open charges (or the
        ones named). Lines copy the charges' prices; package-covered lines
        are settled at once with package credit."""
        given = parse(schemas.InvoiceInput, request or {})
        patient_id = required_id("patient_id", patient_id)
        rules, clinic = self.settings.rules, self.settings.clinic
        today = utcnow().date()
        if given.due_date is not None and given.due_date < today:
            raise field_error("due_date", "must not be in the past")
        with self.db.unit_of_work() as uow:
            claim = idempotency.claim(uow, "issue_invoice", idempotency_key, patient_id, given)
            if claim.replayed:
                return claim.answer
            session = uow.session
            RecordAccess.record(uow, patient_id, "invoice")
            query = sa.select(Charge).where(Charge.patient_id == patient_id, Charge.status == "open")
            if given.charge_ids:
                query = query.where(Charge.charge_id.in_(given.charge_ids))
            charges = session.execute(
                query.order_by(Charge.date_of_service, Charge.created_at, Charge.charge_id).with_for_update()
            ).scalars().all()
            if given.charge_ids:
                missing = sorted(set(given.charge_ids) - {c.charge_id for c in charges})
                if missing:
                    raise ValidationFailed(
                        f"not open charges of this patient: {', '.join(missing)}",
                        [{"field": "charge_ids", "message": f"{m} is not an open charge of this patient"}
                         for m in missing])
            total = domain.invoice_total([c.amount_cents for c in charges])
            now = utcnow()
            invoice = Invoice(
                clinic_id=clinic.clinic_id, number=self._next_invoice_number(session, clinic.clinic_id),
                patient_id=patient_id, currency=rules.currency, total_cents=total,
                status=domain.InvoiceStatus.ISSUED.value, issued_at=now, issued_by=self.db.actor,
                due_date=given.due_date or domain.due_date(today, rules.payment_terms_days))
            invoice.display_number = f"{rules.invoice_prefix}{invoice.number:06d}"
            session.add(invoice)
            session.flush()
            for position, charge in enumerate(charges, start=1):
                session.add(InvoiceLine(
                    invoice_id=invoice.invoice_id, charge_id=charge.charge_id, position=position, code=charge.code,
                    description=charge.description, date_of_service=charge.date_of_service, units=charge.units,
                    unit_price_cents=charge.unit_price_cents, amount_cents=charge.amount_cents,
                    package_id=charge.package_id))
                charge.status, charge.invoice_id = "invoiced", invoice.invoice_id
            session.flush()
            session.refresh(invoice)
            uow.emit("invoice.issued", {
                "patient_id": patient_id, "invoice_id": invoice.invoice_id, "number": invoice.display_number,
                "total_cents": total, "currency": invoice.currency, "due_date": invoice.due_date.isoformat(),
                "issued_at": iso(now)})
            covered = defaultdict(int)
            for charge in charges:
                if charge.package_id:
                    covered[charge.package_id] += charge.amount_cents
            for package_id, amount in sorted(covered.items()):
                self._apply_payment(uow, invoice, Payment(
                    amount_cents=amount, method=domain.PaymentMethod.PACKAGE_CREDIT.value, package_id=package_id,
                    reference=f"package {package_id}", received_at=now, recorded_by=self.db.actor))
            # Nothing left to pay (e.g. only zero-priced lines): paid at issue.
            self._settle(uow, invoice)
            log.info("invoice %s issued with %d line(s)", invoice.invoice_id, len(charges))
            return claim.remember(self._invoice_view(session, invoice))

    @rpc
    def get_invoice(self, invoice_id):
        with self.db.unit_of_work() as uow:
            invoice = self._find(uow.session, Invoice, Invoice.invoice_id, invoice_id, "invoice")
            RecordAccess.record(uow, invoice.patient_id, "read_invoice")
            return self._invoice_view(uow.session, invoice)

    @rpc
    def export_fhir_invoice(self, invoice_id):
        """The invoice as a FHIR R4 Invoice resource (read only)."""
        with self.db.unit_of_work() as uow:
            session = uow.session
            invoice = self._find(session, Invoice, Invoice.invoice_id, invoice_id, "invoice")
            RecordAccess.record(uow, invoice.patient_id, "fhir_export")
            codes = {line.code for line in invoice.lines}
            kinds = dict(session.execute(sa.select(FeePrice.code, FeePrice.kind)
                                         .where(FeePrice.code.in_(codes)).distinct()).all()) if codes else {}
            log.info("invoice %s exported as FHIR", invoice.invoice_id)
            return fhir.invoice_resource(invoice, kinds)

    @rpc
    def list_invoices(self, criteria=None):
        search = parse(schemas.InvoiceFilter, criteria or {})
        query = sa.select(Invoice)
        if search.patient_id:
            query = query.where(Invoice.patient_id == search.patient_id)
        if search.status:
            query = query.where(Invoice.status == search.status)
        if search.overdue is not None:
            late = sa.and_(Invoice.status.in_(OPEN_INVOICE), Invoice.due_date < utcnow().date())
            query = query.where(late if search.overdue else sa.not_(late))
        with self.db.read() as session:
            return page(session, query.order_by(Invoice.number.desc()), search, schemas.invoice_summary)

    @rpc
    def void_invoice(self, invoice_id, void, if_match=None):
        """Void with a reason; the invoice and its number stay, its charges
        are open again to be corrected and re-invoiced."""
        given = parse(schemas.VoidInput, void)
        with self.db.unit_of_work() as uow:
            session = uow.session
            invoice = self._lock(session, Invoice, Invoice.invoice_id, invoice_id, "invoice")
            check_if_match(if_match, self._invoice_view(session, invoice))
            payments = self._payments(session, invoice.invoice_id)
            money = sum(p.amount_cents - p.refunded_cents for p in payments
                        if p.method != domain.PaymentMethod.PACKAGE_CREDIT.value)
            domain.check_can_void(domain.InvoiceStatus(invoice.status), money)
            now = utcnow()
            for payment in payments:
                if payment.method == domain.PaymentMethod.PACKAGE_CREDIT.value:
                    payment.reversed_at = now
                    invoice.paid_cents -= payment.amount_cents
            for charge in session.execute(sa.select(Charge).where(Charge.invoice_id == invoice.invoice_id)
                                          .with_for_update()).scalars():
                charge.status, charge.invoice_id = "open", None
            invoice.status, invoice.voided_at, invoice.voided_by = domain.InvoiceStatus.VOID.value, now, self.db.actor
            invoice.void_reason = given.reason
            log.info("invoice %s voided", invoice.invoice_id)
            return self._invoice_view(session, invoice)

    # ------------------------------------------------ payments and refunds

    @rpc
    def record_payment(self, invoice_id, payment, idempotency_key=None):
        """A card, cash or insurance payment; partial is fine, more than the
        balance is refused. With an ``idempotency_key`` a retry returns the
        first answer and records nothing more."""
        given = parse(schemas.PaymentInput, payment)
        with self.db.unit_of_work() as uow:
            claim = idempotency.claim(uow, "record_payment", idempotency_key, invoice_id, given)
            if claim.replayed:
                return claim.answer
            invoice = self._lock(uow.session, Invoice, Invoice.invoice_id, invoice_id, "invoice")
            RecordAccess.record(uow, invoice.patient_id, "payment")
            status = domain.InvoiceStatus(invoice.status)
            domain.check_payment(status, domain.invoice_balance(
                invoice.total_cents, invoice.adjustment_cents, invoice.paid_cents), given.amount_cents)
            record = self._apply_payment(uow, invoice, Payment(
                amount_cents=given.amount_cents, method=given.method, reference=given.reference, payer=given.payer,
                received_at=given.received_at or utcnow(), recorded_by=self.db.actor))
            return claim.remember(
                {"payment": schemas.payment_view(record), "invoice": schemas.invoice_summary(invoice)})

    @rpc
    def refund_payment(self, payment_id, refund, idempotency_key=None):
        """Give back part or all of a payment, never more than it brought in."""
        given = parse(schemas.RefundInput, refund)
        with self.db.unit_of_work() as uow:
            session = uow.session
            claim = idempotency.claim(uow, "refund_payment", idempotency_key, payment_id, given)
            if claim.replayed:
                return claim.answer
            found = self._find(session, Payment, Payment.payment_id, payment_id, "payment")
            invoice = self._lock(session, Invoice, Invoice.invoice_id, found.invoice_id, "invoice")
            RecordAccess.record(uow, invoice.patient_id, "refund")
            record = session.execute(sa.select(Payment).where(Payment.payment_id == found.payment_id)
                                     .with_for_update().execution_options(populate_existing=True)).scalar_one()
            if record.reversed_at is not None:
                raise Conflict("the payment was reversed; there is nothing to refund")
            domain.check_refund(domain.PaymentMethod(record.method), record.amount_cents, record.refunded_cents,
                                given.amount_cents)
            issued = self._issue_refund(uow, invoice, record, given.amount_cents, given.reason)
            self._settle(uow, invoice)
            return claim.remember(
                {"refund": schemas.refund_view(issued), "invoice": schemas.invoice_summary(invoice)})

    @rpc
    def get_balance(self, patient_id):
        """What the patient owes: open invoice balances plus charges not yet
        invoiced (charges a package covers are not owed)."""
        patient_id = required_id("patient_id", patient_id)
        today = utcnow().date()
        with self.db.unit_of_work() as uow:
            session = uow.session
            RecordAccess.record(uow, patient_id, "read_balance")
            invoices = session.execute(sa.select(Invoice).where(
                Invoice.patient_id == patient_id, Invoice.status.in_(OPEN_INVOICE))).scalars().all()
            uninvoiced = session.execute(sa.select(sa.func.coalesce(sa.func.sum(Charge.amount_cents), 0)).where(
                Charge.patient_id == patient_id, Charge.status == "open", Charge.package_id.is_(None))).scalar_one()
            balances = [(inv, domain.invoice_balance(inv.total_cents, inv.adjustment_cents, inv.paid_cents))
                        for inv in invoices]
            invoiced = sum(balance for _, balance in balances)
            return {
                "patient_id": patient_id, "currency": self.settings.rules.currency,
                "invoiced_balance_cents": invoiced, "uninvoiced_charges_cents": int(uninvoiced),
                "balance_cents": invoiced + int(uninvoiced),
                "overdue_cents": sum(balance for inv, balance in balances if inv.due_date < today),
                "open_invoices": len(invoices),
            }

    # ---------------------------------------------------------- packages

    @rpc
    def sell_package(self, patient_id, sale, idempotency_key=None):
        """Sell a prepaid package from the fee schedule; its price becomes an
        open charge to invoice like any other."""
        given = parse(schemas.PackageSale, sale)
        patient_id = required_id("patient_id", patient_id)
        with self.db.unit_of_work() as uow:
            claim = idempotency.claim(uow, "sell_package", idempotency_key, patient_id, given)
            if claim.replayed:
                return claim.answer
            RecordAccess.record(uow, patient_id, "package")
            today = utcnow().date()
            price = self._price(uow.session, given.code, today)
            if not price.package_route:
                raise field_error("code", f"{given.code} is not a package in the fee schedule")
            package = Package(patient_id=patient_id, code=price.code, description=price.description,
                              route=price.package_route, sessions_total=price.package_sessions,
                              price_cents=price.price_cents, currency=price.currency,
                              status=domain.PackageStatus.ACTIVE.value, sold_at=utcnow(), sold_by=self.db.actor)
            uow.session.add(package)
            uow.session.flush()
            [charge] = self._raise_charges(uow.session, patient_id, [domain.ChargeLine(price.code)], on=today,
                                           source="package_sale", source_ref=package.package_id, actor=self.db.actor)
            return claim.remember({**schemas.package_view(package), "charge": schemas.charge_view(charge)})

    @rpc
    def get_package(self, package_id):
        with self.db.read() as session:
            package = self._find(session, Package, Package.package_id, package_id, "package")
            view = schemas.package_view(package)
            view["uses"] = [{"session_id": use.session_id, "date_of_service": use.date_of_service.isoformat()}
                            for use in session.execute(sa.select(PackageUse).where(
                                PackageUse.package_id == package.package_id).order_by(PackageUse.id)).scalars()]
            return view

    @rpc
    def list_packages(self, patient_id):
        patient_id = required_id("patient_id", patient_id)
        with self.db.unit_of_work() as uow:
            RecordAccess.record(uow, patient_id, "read_packages")
            rows = uow.session.execute(sa.select(Package).where(Package.patient_id == patient_id)
                                       .order_by(Package.sold_at)).scalars().all()
            return [schemas.package_view(p) for p in rows]

    @rpc
    def refund_package(self, package_id, request, idempotency_key=None):
        """Refund the unused sessions of a paid package at its per-session
        price; the package's invoice stays settled (a credit adjustment)."""
        given = parse(schemas.PackageRefundInput, request)
        with self.db.unit_of_work() as uow:
            session = uow.session
            claim = idempotency.claim(uow, "refund_package", idempotency_key, package_id, given)
            if claim.replayed:
                return claim.answer
            package = self._lock(session, Package, Package.package_id, package_id, "package")
            if package.status == domain.PackageStatus.REFUNDED.value:
                raise Conflict("the package has already been refunded")
            amount = domain.package_refund_cents(package.price_cents, package.sessions_total, package.sessions_used)
            sale = session.execute(sa.select(Charge).where(
                Charge.source == "package_sale", Charge.source_ref == package.package_id)).scalar_one()
            if sale.status != "invoiced":
                raise Conflict("the package has not been invoiced and paid; there is no money to refund")
            invoice = self._lock(session, Invoice, Invoice.invoice_id, sale.invoice_id, "invoice")
            if invoice.status != domain.InvoiceStatus.PAID.value:
                raise Conflict("the package's invoice is not paid in full; settle or void it first")
            refunds, left = [], amount
            for payment in session.execute(sa.select(Payment).where(
                    Payment.invoice_id == invoice.invoice_id, Payment.reversed_at.is_(None),
                    Payment.method != domain.PaymentMethod.PACKAGE_CREDIT.value)
                    .order_by(Payment.received_at.desc()).with_for_update()).scalars():
                take = min(left, payment.amount_cents - payment.refunded_cents)
                if take > 0:
                    refunds.append(self._issue_refund(uow, invoice, payment, take, given.reason, package.package_id))
                    left -= take
                if left == 0:
                    break
            if left:
                raise Conflict("the package's payments do not cover the refund; refund them by hand")
            invoice.adjustment_cents += amount
            self._settle(uow, invoice)
            package.status, package.refunded_cents, package.refunded_at = (
                domain.PackageStatus.REFUNDED.value, amount, utcnow())
            return claim.remember(
                {"package": schemas.package_view(package), "refunds": [schemas.refund_view(r) for r in refunds]})

    @rpc
    def list_record_access(self, patient_id, limit=100, offset=0):
        """Who read or changed the patient's billing record, newest first."""
        with self.db.read() as session:
            return RecordAccess.trail(session, required_id("patient_id", patient_id), *paging(limit, offset))

    # --------------------------------------------------------- superbill

    @rpc
    def get_superbill(self, patient_id, period):
        """The itemised statement a patient sends to an insurer."""
        given = parse(schemas.Period, period)
        patient_id = required_id("patient_id", patient_id)
        with self.db.unit_of_work() as uow:
            RecordAccess.record(uow, patient_id, "superbill")
            return self._superbill(uow.session, patient_id, given)

    @rpc
    def render_superbill(self, patient_id, period):
        """The superbill as a printable HTML document."""
        bill = self.get_superbill(patient_id, period)
        html = TEMPLATES.get_template("superbill.html.j2").render(bill=bill, money=money)
        return {"content_type": "text/html; charset=utf-8",
                "filename": f"superbill-{patient_id}-{bill['period']['from']}-{bill['period']['to']}.html",
                "body": html}

    # ----------------------------------------------------------- overdue

    @billing_timer(interval=300, config_key="OVERDUE_SCAN_SECONDS")
    def flag_overdue_invoices(self):
        """Publish ``invoice.overdue`` once per invoice per due date. Rows are
        claimed with SKIP LOCKED so replicas split the work."""
        today = utcnow().date()
        noticed = sa.exists().where(OverdueNotice.invoice_id == Invoice.invoice_id,
                                    OverdueNotice.due_date == Invoice.due_date)
        with self.db.unit_of_work() as uow:
            invoices = uow.session.execute(
                sa.select(Invoice).where(Invoice.status.in_(OPEN_INVOICE), Invoice.due_date < today, ~noticed)
                .order_by(Invoice.due_date, Invoice.number).limit(OVERDUE_BATCH)
                .with_for_update(skip_locked=True)
            ).scalars().all()
            for invoice in invoices:
                uow.session.add(OverdueNotice(invoice_id=invoice.invoice_id, due_date=invoice.due_date))
                uow.emit("invoice.overdue", {
                    "patient_id": invoice.patient_id, "invoice_id": invoice.invoice_id,
                    "number": invoice.display_number, "currency": invoice.currency,
                    "balance_cents": domain.invoice_balance(
                        invoice.total_cents, invoice.adjustment_cents, invoice.paid_cents),
                    "due_date": invoice.due_date.isoformat(),
                    "days_overdue": domain.days_overdue(invoice.due_date, today)})
        if invoices:
            log.info("%d invoice(s) newly overdue", len(invoices))
        return len(invoices)

    # ----------------------------------------------------------- helpers

    def _remember_patient(self, session, event) -> None:
        facts = event_facts(schemas.PatientFacts, event.data)
        record = self._patient_copy(session, facts.patient_id)
        if as_utc(record.facts_as_of) >= event.occurred_at:
            return  # an older fact arriving late
        record.mrn = facts.mrn or record.mrn
        record.given_name, record.family_name = facts.given_name, facts.family_name
        record.date_of_birth = facts.date_of_birth
        record.facts_as_of = event.occurred_at
        if as_utc(record.diagnoses_as_of or NEVER) < event.occurred_at:
            record.diagnosis_codes = [code.upper() for code in facts.diagnosis_codes]
            record.diagnoses_as_of = event.occurred_at

    def _patient_copy(self, session, patient_id: str) -> BillingPatient:
        # Created if missing without failing when another replica creates it
        # at the same moment, then locked so facts are compared one at a time.
        session.execute(insert_ignoring_duplicates(session.bind.dialect.name, BillingPatient.__table__)
                        .values(patient_id=patient_id, facts_as_of=NEVER, diagnosis_codes=[])
                        .on_conflict_do_nothing(index_elements=["patient_id"]))
        return session.execute(sa.select(BillingPatient).where(BillingPatient.patient_id == patient_id)
                               .with_for_update().execution_options(populate_existing=True)).scalar_one()

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

    def _price(self, session, code: str, on: date) -> FeePrice:
        rows = session.execute(sa.select(FeePrice).where(FeePrice.code == code)).scalars().all()
        if not rows:
            raise field_error("code", f"{code} is not in the fee schedule")
        chosen = domain.price_on([domain.Price(r.code, r.effective_from, r.price_cents, r.currency, r.description)
                                  for r in rows], code, on)
        return next(r for r in rows if r.effective_from == chosen.effective_from)

    def _raise_charges(self, session, patient_id, lines, *, on, source, source_ref, actor,
                       appointment_id=None, session_id=None, clinician_id=None) -> list[Charge]:
        charges = []
        for line in lines:
            price = self._price(session, line.code, on)
            charge = Charge(
                patient_id=patient_id, code=line.code, description=price.description, units=line.units,
                unit_price_cents=price.price_cents, amount_cents=domain.line_amount(line.units, price.price_cents),
                currency=price.currency, date_of_service=on, source=source, source_ref=source_ref,
                appointment_id=appointment_id, session_id=session_id, clinician_id=clinician_id,
                status="open", created_by=actor)
            session.add(charge)
            charges.append(charge)
        session.flush()
        return charges

    def _covering_package(self, session, patient_id: str, route: str) -> Package | None:
        # Oldest package first, locked so two sessions cannot take its last use.
        return session.execute(sa.select(Package).where(
            Package.patient_id == patient_id, Package.route == route,
            Package.status == domain.PackageStatus.ACTIVE.value, Package.sessions_used < Package.sessions_total,
        ).order_by(Package.sold_at, Package.package_id).limit(1).with_for_update()).scalar_one_or_none()

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

    def _next_invoice_number(self, session, clinic_id: str) -> int:
        session.execute(insert_ignoring_duplicates(session.bind.dialect.name, InvoiceCounter.__table__)
                        .values(clinic_id=clinic_id, last_number=0)
                        .on_conflict_do_nothing(index_elements=["clinic_id"]))
        counter = session.execute(sa.select(InvoiceCounter).where(InvoiceCounter.clinic_id == clinic_id)
                                  .with_for_update().execution_options(populate_existing=True)).scalar_one()
        counter.last_number += 1
        return counter.last_number

    def _apply_payment(self, uow, invoice: Invoice, payment: Payment) -> Payment:
        payment.invoice_id, payment.patient_id, payment.currency = (
            invoice.invoice_id, invoice.patient_id, invoice.currency)
        uow.session.add(payment)
        invoice.paid_cents += payment.amount_cents
        uow.session.flush()
        uow.emit("payment.received", {
            "patient_id": invoice.patient_id, "payment_id": payment.payment_id, "invoice_id": invoice.invoice_id,
            "amount_cents": payment.amount_cents, "currency": payment.currency, "method": payment.method,
            "received_at": iso(payment.received_at)})
        self._settle(uow, invoice)
        log.info("payment %s recorded on invoice %s", payment.payment_id, invoice.invoice_id)
        return payment

    def _settle(self, uow, invoice: Invoice) -> None:
        """Status from the money; ``invoice.paid`` when it becomes paid."""
        was_paid = invoice.status == domain.InvoiceStatus.PAID.value
        self._settle_status(invoice)
        if invoice.status == domain.InvoiceStatus.PAID.value and not was_paid:
            uow.emit("invoice.paid", {
                "patient_id": invoice.patient_id, "invoice_id": invoice.invoice_id,
                "number": invoice.display_number, "total_cents": invoice.total_cents,
                "currency": invoice.currency, "paid_at": iso(invoice.paid_at)})

    def _issue_refund(self, uow, invoice, payment, amount: int, reason: str, package_id=None) -> Refund:
        refund = Refund(payment_id=payment.payment_id, invoice_id=invoice.invoice_id, patient_id=invoice.patient_id,
                        amount_cents=amount, currency=invoice.currency, reason=reason, package_id=package_id,
                        issued_at=utcnow(), issued_by=self.db.actor)
        uow.session.add(refund)
        payment.refunded_cents += amount
        invoice.paid_cents -= amount
        uow.session.flush()
        # The reason is staff free text: it stays in billing.
        uow.emit("refund.issued", {
            "patient_id": invoice.patient_id, "refund_id": refund.refund_id, "payment_id": payment.payment_id,
            "invoice_id": invoice.invoice_id, "amount_cents": amount, "currency": invoice.currency,
            "issued_at": iso(refund.issued_at)})
        log.info("refund %s issued on payment %s", refund.refund_id, payment.payment_id)
        return refund

    @staticmethod
    def _settle_status(invoice: Invoice) -> None:
        status = domain.status_after_money(invoice.total_cents, invoice.adjustment_cents, invoice.paid_cents)
        if status is domain.InvoiceStatus.PAID and invoice.paid_at is None:
            invoice.paid_at = utcnow()
        elif status is not domain.InvoiceStatus.PAID:
            invoice.paid_at = None
        invoice.status = status.value

    def _payments(self, session, invoice_id: str) -> list[Payment]:
        return session.execute(sa.select(Payment).where(Payment.invoice_id == invoice_id)
                               .order_by(Payment.received_at, Payment.payment_id)).scalars().all()

    def _invoice_view(self, session, invoice: Invoice) -> dict:
        refunds = session.execute(sa.select(Refund).where(Refund.invoice_id == invoice.invoice_id)
                                  .order_by(Refund.issued_at)).scalars().all()
        return schemas.invoice_view(invoice, self._payments(session, invoice.invoice_id), refunds)

    def _find(self, session, model, column, value, what: str):
        record = session.execute(sa.select(model).where(column == required_id(f"{what}_id", value))).scalar_one_or_none()
        if record is None:
            raise NotFound(f"no {what} {value}")
        return record

    def _lock(self, session, model, column, value, what: str):
        record = session.execute(sa.select(model).where(column == required_id(f"{what}_id", value))
                                 .with_for_update().execution_options(populate_existing=True)).scalar_one_or_none()
        if record is None:
            raise NotFound(f"no {what} {value}")
        return record

    def _superbill(self, session, patient_id: str, period: schemas.Period) -> dict:
        patient = session.get(BillingPatient, patient_id)
        charges = session.execute(sa.select(Charge).where(
            Charge.patient_id == patient_id, Charge.status != "void", Charge.source != "package_sale",
            Charge.date_of_service.between(period.date_from, period.date_to),
        ).order_by(Charge.date_of_service, Charge.created_at)).scalars().all()
        start = datetime.combine(period.date_from, datetime.min.time(), tzinfo=timezone.utc)
        end = datetime.combine(period.date_to, datetime.max.time(), tzinfo=timezone.utc)
        # Money actually paid; package credit is shown on the lines it covers.
        payments = session.execute(sa.select(Payment).where(
            Payment.patient_id == patient_id, Payment.reversed_at.is_(None),
            Payment.method != domain.PaymentMethod.PACKAGE_CREDIT.value,
            Payment.received_at.between(start, end)).order_by(Payment.received_at)).scalars().all()
        refunds = session.execute(sa.select(Refund).where(
            Refund.patient_id == patient_id, Refund.issued_at.between(start, end))).scalars().all()
        if patient is None and not charges and not payments:
            raise NotFound(f"billing knows nothing of patient {patient_id}")
        clinic = self.settings.clinic
        lines = [{
            "date_of_service": c.date_of_service.isoformat(), "code": c.code, "description": c.description,
            "units": c.units, "unit_price_cents": c.unit_price_cents, "charge_cents": c.amount_cents,
            "clinician_id": c.clinician_id, "prepaid_by_package": c.package_id is not None,
        } for c in charges]
        charges_total = sum(line["charge_cents"] for line in lines)
        paid = sum(p.amount_cents for p in payments)
        refunded = sum(r.amount_cents for r in refunds)
        prepaid = sum(c.amount_cents for c in charges if c.package_id)
        return {
            "clinic": {"name": clinic.name, "npi": clinic.npi, "tax_id": clinic.tax_id,
                       "address": clinic.address, "phone": clinic.phone},
            "patient": {
                "patient_id": patient_id, "mrn": patient.mrn if patient else None,
                "name": " ".join(n for n in (patient.given_name, patient.family_name) if n) if patient else None,
                "date_of_birth": patient.date_of_birth.isoformat() if patient and patient.date_of_birth else None,
            },
            "diagnosis_codes": list(patient.diagnosis_codes or []) if patient else [],
            "period": {"from": period.date_from.isoformat(), "to": period.date_to.isoformat()},
            "currency": self.settings.rules.currency,
            "dates_of_service": sorted({line["date_of_service"] for line in lines}),
            "lines": lines,
            "payments": [{"received_at": iso(p.received_at), "method": p.method, "reference": p.reference,
                          "amount_cents": p.amount_cents} for p in payments],
            "refunds": [{"issued_at": iso(r.issued_at), "amount_cents": r.amount_cents} for r in refunds],
            "totals": {"charges_cents": charges_total, "prepaid_by_package_cents": prepaid,
                       "payments_cents": paid, "refunds_cents": refunded},
            "generated_at": iso(utcnow()),
        }


# --------------------------------------------------------------- helpers

def event_facts(model, data):
    """Event data as the schema; a malformed event is a ClinicError, so it
    is dead-lettered at once instead of retried."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_failed(exc) from None



def package_balance(package: Package) -> domain.PackageBalance:
    return domain.PackageBalance(package.sessions_total, package.sessions_used,
                                 domain.PackageStatus(package.status), package.route)


def required_id(field: str, value) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        raise field_error(field, "must be a non-empty id")
    return value.strip()


def money(cents: int, currency: str = "") -> str:
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(int(cents)), 100)
    return f"{sign}{whole:,}.{part:02d}" + (f" {currency}" if currency else "")


def page(session, query, search, view) -> dict:
    total = session.execute(sa.select(sa.func.count()).select_from(query.order_by(None).subquery())).scalar_one()
    rows = session.execute(query.limit(search.limit).offset(search.offset)).scalars().all()
    return {"items": [view(row) for row in rows], "total": total, "limit": search.limit, "offset": search.offset}

"""Invoices: issued for a patient's open charges with the clinic's next
number, read, exported as FHIR, listed, voided, and flagged once when they
fall overdue."""
from __future__ import annotations

import logging
from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value

from common import idempotency
from common.database import insert_ignoring_duplicates
from common.etag import check_if_match
from common.errors import NotFound, ValidationFailed, field_error
from common.events import utcnow
from common.handlers import rpc
from common.nested import Related
from common.service import configured_timer
from common.validation import parse, require_id
from services.billing import domain, events, fhir, schemas
from services.billing.capabilities.ledger import OPEN_INVOICE, Ledger, page
from services.billing.models import (
    Charge, FeePrice, Invoice, InvoiceCounter, InvoiceLine, OverdueNotice, Payment, RecordAccess,
)

log = logging.getLogger(__name__)

OVERDUE_BATCH = 200


# An invoice's lines, in the order ``Invoice.lines`` loads them.
INVOICE_LINES = Related(InvoiceLine, InvoiceLine.invoice_id, Invoice.invoice_id, *Invoice.lines.property.order_by)


def _audited_invoice_read() -> sa.Select:
    """On PostgreSQL, an invoice, its lines, everything its detail shows and
    the audit row of its read, in one statement."""
    invoices = Invoice.__table__
    found = (sa.select(invoices.c.invoice_id, invoices.c.patient_id)
             .where(invoices.c.invoice_id == sa.bindparam("invoice_id")).cte("found"))
    return (sa.select(Invoice, INVOICE_LINES.nested("lines"), *schemas.INVOICE_PARTS.nested())
            # The lines come nested, not by a query of their own.
            .options(sa.orm.lazyload(Invoice.lines))
            .where(Invoice.invoice_id == sa.bindparam("invoice_id"))
            .add_cte(RecordAccess.along(found, "read_invoice")))


# Built once: the statement cache then finds its compiled form at once.
AUDITED_INVOICE_READ = _audited_invoice_read()


class Invoicing(Ledger):

    @rpc
    def issue_invoice(self, patient_id, request=None, idempotency_key=None):
        """Number and issue an invoice for the patient's open charges (or the
        ones named). Lines copy the charges' prices; package-covered lines
        are settled at once with package credit."""
        given = parse(schemas.InvoiceInput, request or {})
        patient_id = require_id(patient_id, "patient_id")
        rules, clinic = self.settings.rules, self.settings.clinic
        today = utcnow().date()
        if given.due_date is not None and given.due_date < today:
            raise field_error("due_date", "must not be in the past")
        with self.db.unit_of_work() as uow:
            claim = idempotency.claim(uow, "issue_invoice", idempotency_key, patient_id, given)
            if claim.replayed:
                RecordAccess.record(uow, patient_id, "invoice_replayed")
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
            uow.emit(events.InvoiceIssued(
                patient_id=patient_id, invoice_id=invoice.invoice_id, number=invoice.display_number,
                total_cents=total, currency=invoice.currency, due_date=invoice.due_date, issued_at=now))
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
            return claim.remember(schemas.invoice_detail(session, invoice))

    @rpc
    def get_invoice(self, invoice_id):
        with self.db.audited_read() as uow:
            if uow.session.get_bind().dialect.name != "postgresql":
                invoice = self._find(uow.session, Invoice, Invoice.invoice_id, invoice_id, "invoice")
                RecordAccess.record(uow, invoice.patient_id, "read_invoice")
                return schemas.invoice_detail(uow.session, invoice)
            # The invoice, its lines, payments and refunds and its audit row
            # in one statement.
            row = uow.session.execute(AUDITED_INVOICE_READ, {
                "invoice_id": require_id(invoice_id, "invoice_id"), **RecordAccess.along_parameters(uow)
            }).first()
            if row is None:
                raise NotFound(f"no invoice {invoice_id}")
            # As if loaded with the invoice: not a change to it.
            set_committed_value(row.Invoice, "lines", INVOICE_LINES.unpack(row.lines))
            return schemas.invoice_view(row.Invoice, **schemas.INVOICE_PARTS.unpack(row))

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
            check_if_match(if_match, schemas.invoice_detail(session, invoice))
            payments = session.execute(sa.select(Payment).where(Payment.invoice_id == invoice.invoice_id)).scalars().all()
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
            return schemas.invoice_detail(session, invoice)

    @configured_timer(interval=300, config_key="OVERDUE_SCAN_SECONDS", section="BILLING")
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
                uow.emit(events.InvoiceOverdue(
                    patient_id=invoice.patient_id, invoice_id=invoice.invoice_id,
                    number=invoice.display_number, currency=invoice.currency,
                    balance_cents=domain.invoice_balance(
                        invoice.total_cents, invoice.adjustment_cents, invoice.paid_cents),
                    due_date=invoice.due_date, days_overdue=domain.days_overdue(invoice.due_date, today)))
        if invoices:
            log.info("%d invoice(s) newly overdue", len(invoices))
        return len(invoices)

    def _next_invoice_number(self, session, clinic_id: str) -> int:
        insert_ignoring_duplicates(session, InvoiceCounter.__table__, {"clinic_id": clinic_id, "last_number": 0},
                                   unique="clinic_id")
        counter = session.execute(sa.select(InvoiceCounter).where(InvoiceCounter.clinic_id == clinic_id)
                                  .with_for_update().execution_options(populate_existing=True)).scalar_one()
        counter.last_number += 1
        return counter.last_number

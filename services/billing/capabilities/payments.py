"""Payments and refunds on invoices, and what a patient owes."""
from __future__ import annotations

import sqlalchemy as sa

from common import idempotency
from common.errors import Conflict
from common.events import utcnow
from common.handlers import rpc
from common.validation import parse, require_id
from services.billing import domain, schemas
from services.billing.capabilities.ledger import OPEN_INVOICE, Ledger
from services.billing.models import Charge, Invoice, Payment, RecordAccess


class Payments(Ledger):

    @rpc
    def record_payment(self, invoice_id, payment, idempotency_key=None):
        """A card, cash or insurance payment; partial is fine, more than the
        balance is refused. With an ``idempotency_key`` a retry returns the
        first answer and records nothing more."""
        given = parse(schemas.PaymentInput, payment)
        with self.db.unit_of_work() as uow:
            claim = idempotency.claim(uow, "record_payment", idempotency_key, invoice_id, given)
            if claim.replayed:
                invoice = self._find(uow.session, Invoice, Invoice.invoice_id, invoice_id, "invoice")
                RecordAccess.record(uow, invoice.patient_id, "payment_replayed")
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
                paid = self._find(session, Payment, Payment.payment_id, payment_id, "payment")
                invoice = self._find(session, Invoice, Invoice.invoice_id, paid.invoice_id, "invoice")
                RecordAccess.record(uow, invoice.patient_id, "refund_replayed")
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
        patient_id = require_id(patient_id, "patient_id")
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

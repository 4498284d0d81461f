"""What several billing capabilities share: finding and locking records,
pricing and raising charges, applying payments and refunds and settling an
invoice, billing's copy of a patient, and paging. Every capability class
inherits ``Ledger``."""
from __future__ import annotations

import logging
from datetime import date, datetime, timezone

import sqlalchemy as sa

from common.database import ServiceDatabase, insert_ignoring_duplicates
from common.errors import NotFound, field_error
from common.events import utcnow
from common.validation import require_id
from services.billing import domain, events
from services.billing.dependencies import FeeSchedule, Settings, StoredPrice
from services.billing.models import (
    BillingPatient, Charge, Invoice, Payment, Refund,
)

log = logging.getLogger(__name__)

# "Not yet known": older than any event, so the first fact always wins.
NEVER = datetime(1970, 1, 1, tzinfo=timezone.utc)
OPEN_INVOICE = (domain.InvoiceStatus.ISSUED.value, domain.InvoiceStatus.PARTIALLY_PAID.value)


class Ledger:
    """Declared on ``BillingService``: ``db`` (the service's database),
    ``settings`` (the clinic and its billing rules) and ``fee_schedule``
    (the stored prices)."""

    db: ServiceDatabase
    settings: Settings
    fee_schedule: FeeSchedule

    # ------------------------------------------------------------ records

    def _find(self, session, model, column, value, what: str):
        record = session.execute(sa.select(model).where(column == require_id(value, f"{what}_id"))).scalar_one_or_none()
        if record is None:
            raise NotFound(f"no {what} {value}")
        return record

    def _lock(self, session, model, column, value, what: str):
        record = session.execute(sa.select(model).where(column == require_id(value, f"{what}_id"))
                                 .with_for_update().execution_options(populate_existing=True)).scalar_one_or_none()
        if record is None:
            raise NotFound(f"no {what} {value}")
        return record

    def _patient_copy(self, session, patient_id: str) -> BillingPatient:
        # Created if missing without failing when another replica creates it
        # at the same moment, then locked so facts are compared one at a time.
        insert_ignoring_duplicates(session, BillingPatient.__table__,
                                   {"patient_id": patient_id, "facts_as_of": NEVER, "diagnosis_codes": []},
                                   unique="patient_id")
        return session.execute(sa.select(BillingPatient).where(BillingPatient.patient_id == patient_id)
                               .with_for_update().execution_options(populate_existing=True)).scalar_one()

    # ------------------------------------------------------------ charges

    def _price(self, session, code: str, on: date) -> StoredPrice:
        rows = self.fee_schedule.prices(session, code)
        if not rows:
            raise field_error("code", f"{code} is not in the fee schedule")
        chosen = domain.price_on([domain.Price(r.code, r.effective_from, r.price_cents, r.currency, r.description)
                                  for r in rows], code, on)
        return next(r for r in rows if r.effective_from == chosen.effective_from)

    def _raise_charges(self, session, patient_id, lines, **details) -> list[Charge]:
        charges = self._priced_charges(session, patient_id, lines, **details)
        # Added together, flushed as one multi-row INSERT (the ids are made
        # here, so nothing has to come back row by row).
        session.add_all(charges)
        session.flush()
        return charges

    def _priced_charges(self, session, patient_id, lines, *, on, source, source_ref, actor,
                        appointment_id=None, session_id=None, clinician_id=None) -> list[Charge]:
        """The charges for ``lines``, priced, not yet added to the session."""
        charges = []
        for line in lines:
            price = self._price(session, line.code, on)
            charges.append(Charge(
                patient_id=patient_id, code=line.code, description=price.description, units=line.units,
                unit_price_cents=price.price_cents, amount_cents=domain.line_amount(line.units, price.price_cents),
                currency=price.currency, date_of_service=on, source=source, source_ref=source_ref,
                appointment_id=appointment_id, session_id=session_id, clinician_id=clinician_id,
                status="open", created_by=actor))
        return charges

    # ------------------------------------------------- money on invoices

    def _apply_payment(self, uow, invoice: Invoice, payment: Payment) -> Payment:
        payment.invoice_id, payment.patient_id, payment.currency = (
            invoice.invoice_id, invoice.patient_id, invoice.currency)
        uow.session.add(payment)
        invoice.paid_cents += payment.amount_cents
        uow.session.flush()
        uow.emit(events.PaymentReceived(
            patient_id=invoice.patient_id, payment_id=payment.payment_id, invoice_id=invoice.invoice_id,
            number=invoice.display_number, amount_cents=payment.amount_cents, currency=payment.currency, method=payment.method,
            received_at=payment.received_at))
        self._settle(uow, invoice)
        log.info("payment %s recorded on invoice %s", payment.payment_id, invoice.invoice_id)
        return payment

    def _issue_refund(self, uow, invoice, payment, amount: int, reason: str, package_id=None) -> Refund:
        refund = Refund(payment_id=payment.payment_id, invoice_id=invoice.invoice_id, patient_id=invoice.patient_id,
                        amount_cents=amount, currency=invoice.currency, reason=reason, package_id=package_id,
                        issued_at=utcnow(), issued_by=self.db.actor)
        uow.session.add(refund)
        payment.refunded_cents += amount
        invoice.paid_cents -= amount
        uow.session.flush()
        # The reason is staff free text: it stays in billing.
        uow.emit(events.RefundIssued(
            patient_id=invoice.patient_id, refund_id=refund.refund_id, payment_id=payment.payment_id,
            invoice_id=invoice.invoice_id, amount_cents=amount, currency=invoice.currency,
            issued_at=refund.issued_at))
        log.info("refund %s issued on payment %s", refund.refund_id, payment.payment_id)
        return refund

    def _settle(self, uow, invoice: Invoice) -> None:
        """Status from the money; ``invoice.paid`` when it becomes paid."""
        was_paid = invoice.status == domain.InvoiceStatus.PAID.value
        self._settle_status(invoice)
        if invoice.status == domain.InvoiceStatus.PAID.value and not was_paid:
            uow.emit(events.InvoicePaid(
                patient_id=invoice.patient_id, invoice_id=invoice.invoice_id,
                number=invoice.display_number, total_cents=invoice.total_cents,
                currency=invoice.currency, paid_at=invoice.paid_at))

    @staticmethod
    def _settle_status(invoice: Invoice) -> None:
        status = domain.status_after_money(invoice.total_cents, invoice.adjustment_cents, invoice.paid_cents)
        if status is domain.InvoiceStatus.PAID and invoice.paid_at is None:
            invoice.paid_at = utcnow()
        elif status is not domain.InvoiceStatus.PAID:
            invoice.paid_at = None
        invoice.status = status.value


def page(session, query, search, view) -> dict:
    """One page of ``query`` (``search`` carries a checked limit and offset)
    as ``{items, total, limit, offset}``."""
    total = session.execute(sa.select(sa.func.count()).select_from(query.order_by(None).subquery())).scalar_one()
    rows = session.execute(query.limit(search.limit).offset(search.offset)).scalars().all()
    return {"items": [view(row) for row in rows], "total": total, "limit": search.limit, "offset": search.offset}

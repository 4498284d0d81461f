"""What crosses billing's boundary: validated inputs and the shapes
returned. (The facts read from other services' events are their producers'
contracts, ``services/<producer>/events.py``.)"""
from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Literal

from pydantic import ConfigDict, Field, StrictInt, field_validator, model_validator

from common.events import iso
from common.nested import Parts, Related
from common.validation import Schema, require_offset
from services.billing.models import Invoice, Payment, Refund

# A card number must never be stored; a processor's reference never looks like one.
CARD_NUMBER = re.compile(r"^[\d\s-]{13,23}$")


# ----------------------------------------------------------------- requests

class ChargeInput(Schema):
    """A charge billing staff add by hand, e.g. a 99214 follow-up visit."""

    code: str = Field(min_length=1, max_length=20)
    units: StrictInt = Field(default=1, ge=1, le=1000)
    date_of_service: date
    clinician_id: str | None = Field(default=None, max_length=120)

    @field_validator("date_of_service")
    @classmethod
    def _not_in_the_future(cls, value: date) -> date:
        if value > datetime.now(timezone.utc).date():
            raise ValueError("must not be in the future")
        return value


class VoidInput(Schema):
    reason: str = Field(min_length=3, max_length=500)


class InvoiceInput(Schema):
    """Which open charges to invoice (all of the patient's when omitted)."""

    charge_ids: list[str] | None = Field(default=None, min_length=1, max_length=500)
    due_date: date | None = None


class PaymentInput(Schema):
    amount_cents: StrictInt
    method: Literal["card", "cash", "insurance"]
    reference: str | None = Field(default=None, max_length=120)
    payer: str | None = Field(default=None, max_length=120)
    received_at: datetime | None = None

    _aware = field_validator("received_at")(require_offset)

    @field_validator("reference")
    @classmethod
    def _not_a_card_number(cls, value: str | None) -> str | None:
        if value and CARD_NUMBER.match(value):
            raise ValueError("looks like a card number; give the processor's transaction reference instead")
        return value

    @model_validator(mode="after")
    def _reference_where_needed(self) -> "PaymentInput":
        if self.method in ("card", "insurance") and not self.reference:
            raise ValueError(f"a {self.method} payment needs its reference (transaction id or claim number)")
        return self


class RefundInput(Schema):
    amount_cents: StrictInt
    reason: str = Field(min_length=3, max_length=500)


class PackageSale(Schema):
    code: str = Field(min_length=1, max_length=20)


class PackageRefundInput(Schema):
    reason: str = Field(min_length=3, max_length=500)


class Period(Schema):
    date_from: date = Field(alias="from")
    date_to: date = Field(alias="to")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _ordered(self) -> "Period":
        if self.date_to < self.date_from:
            raise ValueError("'to' must not be before 'from'")
        return self


class ChargeFilter(Schema):
    status: Literal["open", "invoiced", "void"] | None = None
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0)


class InvoiceFilter(Schema):
    patient_id: str | None = Field(default=None, max_length=36)
    status: Literal["issued", "partially_paid", "paid", "void"] | None = None
    overdue: bool | None = None
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0)


# ------------------------------------------------------------------ views

def charge_view(charge) -> dict:
    return {
        "charge_id": charge.charge_id, "patient_id": charge.patient_id, "code": charge.code,
        "description": charge.description, "units": charge.units, "unit_price_cents": charge.unit_price_cents,
        "amount_cents": charge.amount_cents, "currency": charge.currency,
        "date_of_service": charge.date_of_service.isoformat(), "source": charge.source,
        "session_id": charge.session_id, "appointment_id": charge.appointment_id,
        "clinician_id": charge.clinician_id, "package_id": charge.package_id, "status": charge.status,
        "invoice_id": charge.invoice_id, "created_at": iso(charge.created_at),
        "void_reason": charge.void_reason,
    }


def payment_view(payment) -> dict:
    return {
        "payment_id": payment.payment_id, "invoice_id": payment.invoice_id, "patient_id": payment.patient_id,
        "amount_cents": payment.amount_cents, "currency": payment.currency, "method": payment.method,
        "reference": payment.reference, "payer": payment.payer, "package_id": payment.package_id,
        "refunded_cents": payment.refunded_cents, "reversed": payment.reversed_at is not None,
        "received_at": iso(payment.received_at), "recorded_by": payment.recorded_by,
    }


def refund_view(refund) -> dict:
    return {
        "refund_id": refund.refund_id, "payment_id": refund.payment_id, "invoice_id": refund.invoice_id,
        "patient_id": refund.patient_id, "amount_cents": refund.amount_cents, "currency": refund.currency,
        "reason": refund.reason, "package_id": refund.package_id, "issued_at": iso(refund.issued_at),
        "issued_by": refund.issued_by,
    }


def invoice_summary(invoice) -> dict:
    return {
        "invoice_id": invoice.invoice_id, "number": invoice.display_number, "patient_id": invoice.patient_id,
        "status": invoice.status, "currency": invoice.currency, "total_cents": invoice.total_cents,
        "adjustment_cents": invoice.adjustment_cents, "paid_cents": invoice.paid_cents,
        "balance_cents": 0 if invoice.status == "void"
        else invoice.total_cents - invoice.adjustment_cents - invoice.paid_cents,
        "issued_at": iso(invoice.issued_at), "due_date": invoice.due_date.isoformat(),
        "paid_at": iso(invoice.paid_at), "voided_at": iso(invoice.voided_at), "void_reason": invoice.void_reason,
    }


def invoice_view(invoice, payments=(), refunds=()) -> dict:
    return {
        **invoice_summary(invoice),
        "lines": [{
            "charge_id": line.charge_id, "code": line.code, "description": line.description,
            "date_of_service": line.date_of_service.isoformat(), "units": line.units,
            "unit_price_cents": line.unit_price_cents, "amount_cents": line.amount_cents,
            "package_id": line.package_id,
        } for line in invoice.lines],
        "payments": [payment_view(p) for p in payments],
        "refunds": [refund_view(r) for r in refunds],
    }


# What an invoice's detail shows besides the invoice and its lines, each in
# the order shown: read by a query each, or on PostgreSQL nested into the
# statement that reads the invoice.
INVOICE_PARTS = Parts(
    payments=Related(Payment, Payment.invoice_id, Invoice.invoice_id, Payment.received_at, Payment.payment_id),
    refunds=Related(Refund, Refund.invoice_id, Invoice.invoice_id, Refund.issued_at, Refund.refund_id),
)


def invoice_detail(session, invoice) -> dict:
    """``invoice_view`` with the payments and refunds stored against it."""
    return invoice_view(invoice, **INVOICE_PARTS.load(session, invoice))


def package_view(package) -> dict:
    return {
        "package_id": package.package_id, "patient_id": package.patient_id, "code": package.code,
        "description": package.description, "route": package.route, "sessions_total": package.sessions_total,
        "sessions_used": package.sessions_used,
        "sessions_remaining": 0 if package.status == "refunded" else package.sessions_total - package.sessions_used,
        "price_cents": package.price_cents, "currency": package.currency, "status": package.status,
        "sold_at": iso(package.sold_at), "refunded_cents": package.refunded_cents,
        "refunded_at": iso(package.refunded_at),
    }


def package_detail(package, uses) -> dict:
    """``package_view`` with the sessions it has covered."""
    return {**package_view(package),
            "uses": [{"session_id": use.session_id, "date_of_service": use.date_of_service.isoformat()}
                     for use in uses]}


def fee_view(price) -> dict:
    view = {
        "code": price.code, "kind": price.kind, "description": price.description, "unit": price.unit,
        "price_cents": price.price_cents, "currency": price.currency,
        "effective_from": price.effective_from.isoformat(),
    }
    if price.package_route:
        view["package"] = {"route": price.package_route, "sessions": price.package_sessions}
    return view

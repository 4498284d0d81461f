"""What crosses billing's boundary: validated inputs and the shapes
returned. (The facts read from other services' events are their producers'
contracts, ``services/<producer>/events.py``.)"""
from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Literal

import sqlalchemy as sa
from pydantic import ConfigDict, Field, StrictInt, field_validator, model_validator

from common.events import iso
from common.validation import Schema, require_offset
from services.billing.models import Payment, Refund
from common.views import ItemList, Page, View

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


def invoice_detail(session, invoice) -> dict:
    """``invoice_view`` with the payments and refunds stored against it."""
    payments = session.execute(sa.select(Payment).where(Payment.invoice_id == invoice.invoice_id)
                               .order_by(Payment.received_at, Payment.payment_id)).scalars().all()
    refunds = session.execute(sa.select(Refund).where(Refund.invoice_id == invoice.invoice_id)
                              .order_by(Refund.issued_at)).scalars().all()
    return invoice_view(invoice, payments, refunds)


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


# ------------------------------------------------------------ output models
# The shapes of the views above (and of the answers service.py builds
# around them), for the OpenAPI document and typed clients. Money is in
# integer cents with its currency.


class FeePackageView(View):
    route: str
    sessions: int


class FeeView(View):
    code: str
    kind: str
    description: str
    unit: str | None
    price_cents: int
    currency: str
    effective_from: date
    package: FeePackageView | None = None


class FeeScheduleView(ItemList[FeeView]):
    """The fee schedule in force on a date (a list, not paginated)."""

    on_date: date
    currency: str


class ChargeView(View):
    charge_id: str
    patient_id: str
    code: str
    description: str
    units: int
    unit_price_cents: int
    amount_cents: int
    currency: str
    date_of_service: date
    source: str
    session_id: str | None
    appointment_id: str | None
    clinician_id: str | None
    package_id: str | None
    status: str
    invoice_id: str | None
    created_at: datetime | None
    void_reason: str | None


class ChargePage(Page[ChargeView]):
    pass


class PaymentView(View):
    payment_id: str
    invoice_id: str
    patient_id: str
    amount_cents: int
    currency: str
    method: str
    reference: str | None
    payer: str | None
    package_id: str | None
    refunded_cents: int
    reversed: bool
    received_at: datetime | None
    recorded_by: str | None


class RefundView(View):
    refund_id: str
    payment_id: str
    invoice_id: str
    patient_id: str
    amount_cents: int
    currency: str
    reason: str | None
    package_id: str | None
    issued_at: datetime | None
    issued_by: str | None


class InvoiceSummaryView(View):
    invoice_id: str
    number: str
    patient_id: str
    status: str
    currency: str
    total_cents: int
    adjustment_cents: int
    paid_cents: int
    balance_cents: int
    issued_at: datetime | None
    due_date: date
    paid_at: datetime | None
    voided_at: datetime | None
    void_reason: str | None


class InvoiceLineView(View):
    charge_id: str
    code: str
    description: str
    date_of_service: date
    units: int
    unit_price_cents: int
    amount_cents: int
    package_id: str | None


class InvoiceView(InvoiceSummaryView):
    """An invoice with its lines, payments and refunds."""

    lines: list[InvoiceLineView]
    payments: list[PaymentView]
    refunds: list[RefundView]


class InvoicePage(Page[InvoiceSummaryView]):
    pass


class PaymentRecorded(View):
    payment: PaymentView
    invoice: InvoiceSummaryView


class RefundIssued(View):
    refund: RefundView
    invoice: InvoiceSummaryView


class BalanceView(View):
    patient_id: str
    currency: str
    invoiced_balance_cents: int
    uninvoiced_charges_cents: int
    balance_cents: int
    overdue_cents: int
    open_invoices: int


class PackageView(View):
    package_id: str
    patient_id: str
    code: str
    description: str
    route: str | None
    sessions_total: int
    sessions_used: int
    sessions_remaining: int
    price_cents: int
    currency: str
    status: str
    sold_at: datetime | None
    refunded_cents: int | None
    refunded_at: datetime | None


class PackageList(ItemList[PackageView]):
    pass


class PackageSold(PackageView):
    """The package sold, with the open charge for its price."""

    charge: ChargeView


class PackageUseView(View):
    session_id: str | None
    date_of_service: date


class PackageRecordView(PackageView):
    """A package with the sessions drawn from it."""

    uses: list[PackageUseView]


class PackageRefunded(View):
    package: PackageView
    refunds: list[RefundView]


class SuperbillClinic(View):
    name: str | None
    npi: str | None
    tax_id: str | None
    address: str | None
    phone: str | None


class SuperbillPatient(View):
    patient_id: str
    mrn: str | None
    name: str | None
    date_of_birth: date | None


class SuperbillPeriod(View):
    from_: date = Field(alias="from")
    to: date


class SuperbillLine(View):
    date_of_service: date
    code: str
    description: str
    units: int
    unit_price_cents: int
    charge_cents: int
    clinician_id: str | None
    prepaid_by_package: bool


class SuperbillPayment(View):
    received_at: datetime | None
    method: str
    reference: str | None
    amount_cents: int


class SuperbillRefund(View):
    issued_at: datetime | None
    amount_cents: int


class SuperbillTotals(View):
    charges_cents: int
    prepaid_by_package_cents: int
    payments_cents: int
    refunds_cents: int


class SuperbillView(View):
    clinic: SuperbillClinic
    patient: SuperbillPatient
    diagnosis_codes: list[str]
    period: SuperbillPeriod
    currency: str
    dates_of_service: list[date]
    lines: list[SuperbillLine]
    payments: list[SuperbillPayment]
    refunds: list[SuperbillRefund]
    totals: SuperbillTotals
    generated_at: datetime

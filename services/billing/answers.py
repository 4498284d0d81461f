"""The shape of every answer the billing service gives (fees, charges,
invoices, payments, refunds, packages and superbills) as output models, for
the OpenAPI document and typed clients. The view builders in ``schemas``
build these answers as plain dicts; the gateway's document tests hold the
two together."""
from __future__ import annotations

from datetime import date, datetime

from pydantic import Field

from common.views import ItemList, Page, View


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

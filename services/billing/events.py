"""The events billing publishes (exchange ``billing.events``): one contract
per event type and version, used by billing to emit and by every consumer to
read. Pure: nothing here touches the database or the broker.

Money is integer cents with its ``currency``. Refund and void reasons are
staff free text and stay in billing."""
from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from common.events import EventData, Instant


class BillingEvent(EventData):
    producer = "billing"


class InvoiceIssued(BillingEvent):
    """An invoice is numbered and issued."""

    type = "invoice.issued"

    patient_id: str
    invoice_id: str
    number: str = Field(description="e.g. INV-000042")
    total_cents: int
    currency: str
    due_date: date
    issued_at: Instant


class PaymentReceived(BillingEvent):
    """A payment is recorded, including the package credit applied when an
    invoice with package-covered lines is issued."""

    type = "payment.received"

    patient_id: str
    payment_id: str
    invoice_id: str
    # Added to version 1 after it was first published: events from before
    # lack it, so consumers must take its absence.
    number: str | None = Field(default=None, description="the invoice's number, e.g. INV-000042, what a receipt "
                                                         "names; absent from events published before it was added")
    amount_cents: int
    currency: str
    method: Literal["card", "cash", "insurance", "package_credit"]
    received_at: Instant


class InvoicePaid(BillingEvent):
    """An invoice's balance reaches zero (once per time it becomes paid; a
    refund can reopen it)."""

    type = "invoice.paid"

    patient_id: str
    invoice_id: str
    number: str
    total_cents: int
    currency: str
    paid_at: Instant


class InvoiceOverdue(BillingEvent):
    """The overdue timer finds an unpaid invoice past its due date; once per
    invoice per due date."""

    type = "invoice.overdue"

    patient_id: str
    invoice_id: str
    number: str
    balance_cents: int
    currency: str
    due_date: date
    days_overdue: int


class RefundIssued(BillingEvent):
    """A payment is refunded, in part or in full, or a package's unused
    sessions are refunded (one event per payment refunded from)."""

    type = "refund.issued"

    patient_id: str
    refund_id: str
    payment_id: str
    invoice_id: str
    amount_cents: int
    currency: str
    issued_at: Instant


class FeeScheduleChanged(BillingEvent):
    """A billing process started with a fee schedule file that has prices
    not stored yet, and stored them. Every billing process drops the prices
    it keeps and reads them again on next use."""

    type = "fee_schedule.changed"

    codes: list[str] = Field(description="the procedure codes with a new price")
    prices_added: int

"""Billing's own tables. Nothing outside this service reads them."""
from __future__ import annotations

import uuid
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from common.audit import RecordAccessMixin
from common.idempotency import idempotency_keys
from common.events import utcnow


class Base(DeclarativeBase):
    type_annotation_map = {datetime: sa.DateTime(timezone=True), dict: sa.JSON, list: sa.JSON}


def new_id() -> str:
    return str(uuid.uuid4())


class FeePrice(Base):
    """One price of one code from one date on; rows are only ever added."""

    __tablename__ = "fee_prices"
    __table_args__ = (sa.UniqueConstraint("code", "effective_from", name="uq_fee_prices_code_effective_from"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(sa.String(20))
    kind: Mapped[str] = mapped_column(sa.String(20))
    description: Mapped[str] = mapped_column(sa.String(200))
    unit: Mapped[str] = mapped_column(sa.String(30))
    price_cents: Mapped[int]
    currency: Mapped[str] = mapped_column(sa.String(3))
    effective_from: Mapped[date]
    package_route: Mapped[str | None] = mapped_column(sa.String(30))
    package_sessions: Mapped[int | None]
    loaded_at: Mapped[datetime] = mapped_column(default=utcnow)


class BillingPatient(Base):
    """Billing's copy of the account facts a superbill needs, from intake's
    events; ``facts_as_of`` keeps an older event from overwriting a newer."""

    __tablename__ = "patients"

    patient_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    mrn: Mapped[str | None] = mapped_column(sa.String(20))
    given_name: Mapped[str | None] = mapped_column(sa.String(100))
    family_name: Mapped[str | None] = mapped_column(sa.String(100))
    date_of_birth: Mapped[date | None]
    diagnosis_codes: Mapped[list] = mapped_column(default=list)
    facts_as_of: Mapped[datetime]
    diagnoses_as_of: Mapped[datetime | None]


class Charge(Base):
    """A billable service at the price in force on its date of service. A
    source fact (a session, an appointment, an approval) raises each code
    once: the unique constraint holds even against a replayed event."""

    __tablename__ = "charges"
    __table_args__ = (
        sa.UniqueConstraint("source", "source_ref", "code", name="uq_charges_source_code"),
        sa.Index("ix_charges_patient_status", "patient_id", "status"),
    )

    charge_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(sa.String(36))
    code: Mapped[str] = mapped_column(sa.String(20))
    description: Mapped[str] = mapped_column(sa.String(200))
    units: Mapped[int]
    unit_price_cents: Mapped[int]
    amount_cents: Mapped[int]
    currency: Mapped[str] = mapped_column(sa.String(3))
    date_of_service: Mapped[date]
    source: Mapped[str] = mapped_column(sa.String(30))
    source_ref: Mapped[str] = mapped_column(sa.String(36))
    appointment_id: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    session_id: Mapped[str | None] = mapped_column(sa.String(36))
    clinician_id: Mapped[str | None] = mapped_column(sa.String(120))
    package_id: Mapped[str | None] = mapped_column(sa.ForeignKey("packages.package_id"))
    status: Mapped[str] = mapped_column(sa.String(20), default="open")
    invoice_id: Mapped[str | None] = mapped_column(sa.ForeignKey("invoices.invoice_id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(sa.String(160))
    voided_at: Mapped[datetime | None]
    voided_by: Mapped[str | None] = mapped_column(sa.String(160))
    void_reason: Mapped[str | None] = mapped_column(sa.String(500))


class InvoiceCounter(Base):
    """The last invoice number per clinic, locked FOR UPDATE while an
    invoice is numbered so numbers have no gaps and no duplicates."""

    __tablename__ = "invoice_counters"

    clinic_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    last_number: Mapped[int] = mapped_column(default=0)


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        sa.UniqueConstraint("clinic_id", "number", name="uq_invoices_clinic_number"),
        sa.Index("ix_invoices_status_due", "status", "due_date"),
    )

    invoice_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    clinic_id: Mapped[str] = mapped_column(sa.String(40))
    number: Mapped[int]
    display_number: Mapped[str] = mapped_column(sa.String(40))
    patient_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    currency: Mapped[str] = mapped_column(sa.String(3))
    total_cents: Mapped[int]
    # Credits that settle part of the total without money, e.g. the unused
    # sessions of a refunded package.
    adjustment_cents: Mapped[int] = mapped_column(default=0)
    # Payments received less refunds: kept here, under the row lock, so the
    # balance is one read.
    paid_cents: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(sa.String(20))
    issued_at: Mapped[datetime]
    issued_by: Mapped[str | None] = mapped_column(sa.String(160))
    due_date: Mapped[date]
    paid_at: Mapped[datetime | None]
    voided_at: Mapped[datetime | None]
    voided_by: Mapped[str | None] = mapped_column(sa.String(160))
    void_reason: Mapped[str | None] = mapped_column(sa.String(500))

    lines: Mapped[list["InvoiceLine"]] = relationship(
        back_populates="invoice", order_by="InvoiceLine.position", lazy="selectin")


class InvoiceLine(Base):
    """A copy of the charge at issue time: later fee changes never reach it."""

    __tablename__ = "invoice_lines"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    invoice_id: Mapped[str] = mapped_column(sa.ForeignKey("invoices.invoice_id"), index=True)
    charge_id: Mapped[str] = mapped_column(sa.ForeignKey("charges.charge_id"))
    position: Mapped[int]
    code: Mapped[str] = mapped_column(sa.String(20))
    description: Mapped[str] = mapped_column(sa.String(200))
    date_of_service: Mapped[date]
    units: Mapped[int]
    unit_price_cents: Mapped[int]
    amount_cents: Mapped[int]
    package_id: Mapped[str | None] = mapped_column(sa.String(36))

    invoice: Mapped[Invoice] = relationship(back_populates="lines")


class Payment(Base):
    __tablename__ = "payments"

    payment_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    invoice_id: Mapped[str] = mapped_column(sa.ForeignKey("invoices.invoice_id"), index=True)
    patient_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    amount_cents: Mapped[int]
    currency: Mapped[str] = mapped_column(sa.String(3))
    method: Mapped[str] = mapped_column(sa.String(20))
    # A processor's transaction id or a claim number, never a card number.
    reference: Mapped[str | None] = mapped_column(sa.String(120))
    payer: Mapped[str | None] = mapped_column(sa.String(120))
    package_id: Mapped[str | None] = mapped_column(sa.String(36))
    refunded_cents: Mapped[int] = mapped_column(default=0)
    # A package-credit payment is reversed when its invoice is voided.
    reversed_at: Mapped[datetime | None]
    received_at: Mapped[datetime]
    recorded_by: Mapped[str | None] = mapped_column(sa.String(160))


class Refund(Base):
    __tablename__ = "refunds"

    refund_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    payment_id: Mapped[str] = mapped_column(sa.ForeignKey("payments.payment_id"), index=True)
    invoice_id: Mapped[str] = mapped_column(sa.ForeignKey("invoices.invoice_id"))
    patient_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    amount_cents: Mapped[int]
    currency: Mapped[str] = mapped_column(sa.String(3))
    reason: Mapped[str] = mapped_column(sa.String(500))
    package_id: Mapped[str | None] = mapped_column(sa.String(36))
    issued_at: Mapped[datetime]
    issued_by: Mapped[str | None] = mapped_column(sa.String(160))


class Package(Base):
    __tablename__ = "packages"

    package_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    patient_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    code: Mapped[str] = mapped_column(sa.String(20))
    description: Mapped[str] = mapped_column(sa.String(200))
    route: Mapped[str] = mapped_column(sa.String(30))
    sessions_total: Mapped[int]
    sessions_used: Mapped[int] = mapped_column(default=0)
    price_cents: Mapped[int]
    currency: Mapped[str] = mapped_column(sa.String(3))
    status: Mapped[str] = mapped_column(sa.String(20))
    sold_at: Mapped[datetime]
    sold_by: Mapped[str | None] = mapped_column(sa.String(160))
    refunded_cents: Mapped[int] = mapped_column(default=0)
    refunded_at: Mapped[datetime | None]


class PackageUse(Base):
    """One session drawn from a package; a session is drawn at most once."""

    __tablename__ = "package_uses"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    package_id: Mapped[str] = mapped_column(sa.ForeignKey("packages.package_id"), index=True)
    session_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    date_of_service: Mapped[date]
    used_at: Mapped[datetime] = mapped_column(default=utcnow)


class OverdueNotice(Base):
    """One ``invoice.overdue`` per invoice per due date, whichever replica's
    timer gets there first."""

    __tablename__ = "overdue_notices"

    invoice_id: Mapped[str] = mapped_column(sa.ForeignKey("invoices.invoice_id"), primary_key=True)
    due_date: Mapped[date] = mapped_column(primary_key=True)
    noticed_at: Mapped[datetime] = mapped_column(default=utcnow)



class RecordAccess(RecordAccessMixin, Base):
    """Who read or changed a patient's charges, invoices, payments, packages and superbills (see common.audit)."""


# The shared Idempotency-Key store (common.idempotency), listed with this
# service's tables so its migrations are held to it like the rest.
idempotency_keys.to_metadata(Base.metadata)

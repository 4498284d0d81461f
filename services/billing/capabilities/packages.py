"""Prepaid packages (e.g. six infusions at a discount): sold from the fee
schedule, read, listed, and refunded for their unused sessions. A session
consumes its package use when it is charged (see ``charging``)."""
from __future__ import annotations

import sqlalchemy as sa

from common import idempotency
from common.errors import Conflict, field_error
from common.events import utcnow
from common.handlers import rpc
from common.validation import parse, require_id
from services.billing import domain, schemas
from services.billing.capabilities.ledger import Ledger
from services.billing.models import Charge, Invoice, Package, PackageUse, Payment, RecordAccess


class Packages(Ledger):

    @rpc
    def sell_package(self, patient_id, sale, idempotency_key=None):
        """Sell a prepaid package from the fee schedule; its price becomes an
        open charge to invoice like any other."""
        given = parse(schemas.PackageSale, sale)
        patient_id = require_id(patient_id, "patient_id")
        with self.db.unit_of_work() as uow:
            claim = idempotency.claim(uow, "sell_package", idempotency_key, patient_id, given)
            if claim.replayed:
                RecordAccess.record(uow, patient_id, "package_replayed")
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
            uses = session.execute(sa.select(PackageUse).where(PackageUse.package_id == package.package_id)
                                   .order_by(PackageUse.id)).scalars().all()
            return schemas.package_detail(package, uses)

    @rpc
    def list_packages(self, patient_id):
        patient_id = require_id(patient_id, "patient_id")
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
                package = self._find(session, Package, Package.package_id, package_id, "package")
                RecordAccess.record(uow, package.patient_id, "package_refund_replayed")
                return claim.answer
            package = self._lock(session, Package, Package.package_id, package_id, "package")
            RecordAccess.record(uow, package.patient_id, "package_refund")
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

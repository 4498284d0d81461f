"""Superbills: a patient's itemised statement for a period, as JSON and as a
printable HTML document. The records are read here; ``superbill`` builds
and renders them."""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa

from common.errors import NotFound
from common.events import utcnow
from common.handlers import rpc
from common.validation import parse, require_id
from services.billing import domain, schemas, superbill
from services.billing.capabilities.ledger import Ledger
from services.billing.models import BillingPatient, Charge, Payment, RecordAccess, Refund


class Superbills(Ledger):

    @rpc
    def get_superbill(self, patient_id, period):
        """The itemised statement a patient sends to an insurer."""
        given = parse(schemas.Period, period)
        patient_id = require_id(patient_id, "patient_id")
        with self.db.unit_of_work() as uow:
            RecordAccess.record(uow, patient_id, "superbill")
            return self._superbill(uow.session, patient_id, given)

    @rpc
    def render_superbill(self, patient_id, period):
        """The superbill as a printable HTML document."""
        return superbill.render_html(self.get_superbill(patient_id, period))

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
        return superbill.build(
            clinic=self.settings.clinic, currency=self.settings.rules.currency, patient_id=patient_id,
            patient=patient, period=period, charges=charges, payments=payments, refunds=refunds,
            generated_at=utcnow())

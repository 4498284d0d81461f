"""The billing service: charges raised from other services' events,
invoices, payments, refunds, prepaid packages and superbills. Each
capability's entrypoints are a class in ``capabilities/``; this module
composes them into the one nameko service that ``nameko run
services.billing.service`` and ``clinic run billing`` start."""
from __future__ import annotations

from common.service import ClinicService, ConfigSection
from services.billing.capabilities.charging import Charging
from services.billing.capabilities.invoicing import Invoicing
from services.billing.capabilities.packages import Packages
from services.billing.capabilities.patients import Patients
from services.billing.capabilities.payments import Payments
from services.billing.capabilities.superbills import Superbills
from services.billing.dependencies import FeeScheduleLoader, Settings


class BillingService(Patients, Charging, Invoicing, Payments, Packages, Superbills, ClinicService):
    name = "billing"

    settings = ConfigSection("BILLING", Settings.from_config)
    fee_schedule = FeeScheduleLoader()

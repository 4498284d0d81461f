"""The billing service: charges raised from other services' events,
invoices, payments, refunds, prepaid packages and superbills. Each
capability's entrypoints are a class in ``capabilities/``; this module
composes them into the one nameko service that ``nameko run
services.billing.service`` and ``clinic run billing`` start."""
from __future__ import annotations

# Modules, not classes: `nameko run services.billing.service` runs every class
# with entrypoints it finds at the top of this module, and only the composed
# service must be there.
import common.service
from services.billing.capabilities import charging, invoicing, packages, patients, payments, superbills
from services.billing.dependencies import FeeScheduleLoader, Settings


class BillingService(patients.Patients, charging.Charging, invoicing.Invoicing, payments.Payments,
                     packages.Packages, superbills.Superbills, common.service.ClinicService):
    name = "billing"

    settings = common.service.ConfigSection("BILLING", Settings.from_config)
    fee_schedule = FeeScheduleLoader()

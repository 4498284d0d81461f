"""Billing's entrypoints, one class per capability, composed into
``BillingService`` in ``services/billing/service.py``. What several
capabilities share is in ``ledger``."""

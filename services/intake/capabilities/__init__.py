"""Intake's entrypoints, one class per capability, composed into
``IntakeService`` in ``services/intake/service.py``. What several
capabilities share is in ``records``."""

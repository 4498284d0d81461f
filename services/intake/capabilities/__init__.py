"""Intake's entrypoints by capability, composed in ``services/intake/service.py``."""

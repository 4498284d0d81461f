"""Sessions' entrypoints by capability, composed in ``services/sessions/service.py``."""

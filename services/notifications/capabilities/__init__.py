"""Notifications' entrypoints by capability, composed in ``services/notifications/service.py``."""

"""Notifications' entrypoints, one class per capability, composed into
``NotificationsService`` in ``services/notifications/service.py``. What
several capabilities share is in ``messages_owed``."""

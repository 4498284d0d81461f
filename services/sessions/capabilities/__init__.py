"""Sessions' entrypoints, one class per capability, composed into
``SessionsService`` in ``services/sessions/service.py``. What several
capabilities share is in ``chart``."""

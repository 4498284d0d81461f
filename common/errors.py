"""Errors that cross the RPC boundary with a code and a message.

They are registered with nameko so a Python caller that imports this module
gets the same exception class back (with its ``details``); any other caller
gets nameko's ``RemoteError`` whose ``exc_type`` is the class name below.
The gateway maps each one to an HTTP status and a problem+json body.
"""
from __future__ import annotations

from nameko.exceptions import deserialize_to_instance


class ClinicError(Exception):
    """Base of every error a caller is expected to handle."""

    code = "clinic_error"
    http_status = 400
    title = "Request could not be processed"

    def __init__(self, message: str, details: dict | list | None = None):
        # Both args must survive JSON so the error can be rebuilt remotely;
        # nameko sends a missing ``details`` across as the string "None".
        if not isinstance(details, (dict, list)):
            details = None
        super().__init__(message, details)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message

    def to_problem(self) -> dict:
        problem = {
            "type": f"https://clinic.invalid/problems/{self.code}",
            "title": self.title,
            "status": self.http_status,
            "detail": self.message,
            "code": self.code,
        }
        if self.details is not None:
            problem["errors" if self.code == "validation_failed" else "details"] = self.details
        return problem


@deserialize_to_instance
class ValidationFailed(ClinicError):
    """Input is malformed or breaks a rule; ``details`` lists
    ``{"field": ..., "message": ...}`` for every offending field."""

    code = "validation_failed"
    http_status = 422
    title = "Invalid input"


@deserialize_to_instance
class NotFound(ClinicError):
    code = "not_found"
    http_status = 404
    title = "Not found"


@deserialize_to_instance
class Conflict(ClinicError):
    """The request is well formed but the record's state does not allow it
    (an illegal state move, a double booking, a duplicate)."""

    code = "conflict"
    http_status = 409
    title = "Conflict with the current state"


@deserialize_to_instance
class Forbidden(ClinicError):
    code = "forbidden"
    http_status = 403
    title = "Forbidden"


@deserialize_to_instance
class ServiceUnavailable(ClinicError):
    """The service could not reach what it depends on (its database, the
    broker, another service) in time. Nothing was saved unless the message
    says it may have been; the caller may try again later (the gateway
    answers 503 with ``Retry-After``)."""

    code = "service_unavailable"
    http_status = 503
    title = "A clinic service is unavailable"


@deserialize_to_instance
class PreconditionFailed(ClinicError):
    """The caller's ``If-Match`` names a version of the record that is no
    longer current: someone else changed it meanwhile. Nothing was changed;
    read the record again and decide."""

    code = "precondition_failed"
    http_status = 412
    title = "The record changed meanwhile"


# Registered for symmetry so ``Exception`` subclasses above are all rebuilt.
deserialize_to_instance(ClinicError)

ERRORS_BY_NAME = {
    cls.__name__: cls
    for cls in (ClinicError, ValidationFailed, NotFound, Conflict, Forbidden, ServiceUnavailable,
                PreconditionFailed)
}


def field_error(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", [{"field": field, "message": message}])

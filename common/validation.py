"""Turning untrusted input into schema objects, with errors naming the field."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from common.errors import ValidationFailed

M = TypeVar("M", bound=BaseModel)


class Schema(BaseModel):
    """Base of every schema that crosses a boundary: unknown fields are an
    error (a typo must not be silently dropped) and strings are trimmed."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def parse(model: type[M], payload: Any) -> M:
    if isinstance(payload, model):
        return payload
    if not isinstance(payload, dict):
        raise ValidationFailed(
            f"expected a JSON object for {model.__name__}",
            [{"field": "", "message": "expected an object"}],
        )
    refuse_control_characters(payload)
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise validation_failed(exc) from None


# C0 controls but tab, line feed and carriage return (which free text such as
# a note may hold), DEL, C1 controls, and the UTF-16 surrogates a JSON "\ud800"
# escape decodes to. PostgreSQL refuses NUL and lone surrogates outright; the
# rest would reach a record, an SMS or a PDF where no one can see them.
CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def control_character_errors(value: Any, field: str = "") -> list[dict]:
    """``{field, message}`` for every string in ``value`` (a JSON-like tree;
    keys count too) that holds a control character."""
    if isinstance(value, str):
        found = CONTROL_CHARACTERS.search(value)
        if found is None:
            return []
        return [{"field": field, "message": f"must not contain control characters (U+{ord(found.group()):04X})"}]
    errors: list[dict] = []
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{field}.{key}" if field else str(key)
            if isinstance(key, str) and CONTROL_CHARACTERS.search(key):
                errors.append({"field": CONTROL_CHARACTERS.sub("?", name),
                               "message": "field names must not contain control characters"})
                continue
            errors += control_character_errors(item, name)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            errors += control_character_errors(item, f"{field}.{index}" if field else str(index))
    return errors


def refuse_control_characters(value: Any, field: str = "") -> None:
    """Raise ``ValidationFailed`` naming each text field with a control
    character; checked before any schema so no rule ever sees one."""
    errors = control_character_errors(value, field)
    if errors:
        raise ValidationFailed("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors)


def validation_failed(exc: ValidationError) -> ValidationFailed:
    errors = [
        {"field": ".".join(str(part) for part in err["loc"]) or "", "message": err["msg"]}
        for err in exc.errors()
    ]
    summary = "; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors)
    return ValidationFailed(summary, errors)


def require_offset(value: datetime | None) -> datetime | None:
    """A field validator for instants: a time without an offset is
    ambiguous in a clinic whose patients live in several time zones."""
    if value is not None and value.tzinfo is None:
        raise ValueError("must include a time zone offset, e.g. 2026-11-24T15:04:05Z")
    return value.astimezone(timezone.utc) if value is not None else None


def paging(limit, offset, *, most: int = 500) -> tuple[int, int]:
    """``limit`` and ``offset`` as given by an RPC caller, checked."""
    errors = []
    try:
        limit = int(limit)
        if not 1 <= limit <= most:
            errors.append({"field": "limit", "message": f"must be between 1 and {most}"})
    except (TypeError, ValueError):
        errors.append({"field": "limit", "message": "must be a whole number"})
    try:
        offset = int(offset)
        if offset < 0:
            errors.append({"field": "offset", "message": "must not be negative"})
    except (TypeError, ValueError):
        errors.append({"field": "offset", "message": "must be a whole number"})
    if errors:
        raise ValidationFailed("; ".join(f"{e['field']} {e['message']}" for e in errors), errors)
    return limit, offset


def dump(model: BaseModel) -> dict:
    return model.model_dump(mode="json")

"""The event catalogue, built from the contracts (``services/<producer>/events.py``)
and the handlers that consume them, and written into the docs.

``docs/events.md`` (the summary table) and ``docs/events/<producer>.md``
(each event's fields) hold generated sections between markers; the prose
around them is written by hand. A test fails when a section no longer
matches the declarations; regenerate with

    .venv/bin/python -m services.events_catalogue
"""
from __future__ import annotations

import importlib
import inspect
import re
import sys
import types
import typing
from datetime import date, datetime
from pathlib import Path

from pydantic import BaseModel

from common.events import EventData

PRODUCERS = ("intake", "sessions", "billing", "notifications")
CONSUMERS = {
    "intake": "services.intake.service:IntakeService",
    "sessions": "services.sessions.service:SessionsService",
    "billing": "services.billing.service:BillingService",
    "notifications": "services.notifications.service:NotificationsService",
}
ROOT = Path(__file__).resolve().parent.parent
BEGIN = "<!-- generated from services/*/events.py by `python -m services.events_catalogue`: do not edit -->"
END = "<!-- end of generated section -->"


# ------------------------------------------------------------ declarations

def contracts(producer: str) -> list[type[EventData]]:
    """The contracts a producer declares, in the order of its module."""
    module = importlib.import_module(f"services.{producer}.events")
    found = [value for value in vars(module).values()
             if inspect.isclass(value) and issubclass(value, EventData) and value.__module__ == module.__name__
             and "type" in vars(value)]
    for contract in found:
        if contract.producer != producer:
            raise ValueError(f"{contract.__name__} is declared by {producer} but names {contract.producer}")
    return found


def all_contracts() -> list[type[EventData]]:
    return [contract for producer in PRODUCERS for contract in contracts(producer)]


def consumers() -> dict[tuple[str, str], list[str]]:
    """(producer, event type) -> the services with a handler for it."""
    found: dict[tuple[str, str], set[str]] = {}
    for service, target in CONSUMERS.items():
        module, name = target.split(":")
        cls = getattr(importlib.import_module(module), name)
        for attribute in dir(cls):
            consumed = getattr(getattr(cls, attribute, None), "consumed_event", None)
            if consumed:
                found.setdefault(tuple(consumed), set()).add(service)
    return {key: sorted(services) for key, services in found.items()}


# ------------------------------------------------------------ rendering

def _unwrap(annotation):
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _nullable(annotation) -> tuple[object, bool]:
    annotation = _unwrap(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [_unwrap(a) for a in typing.get_args(annotation)]
        if type(None) in args:
            rest = [a for a in args if a is not type(None)]
            return (rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]), True
    return annotation, False


def type_name(annotation) -> str:
    annotation, nullable = _nullable(annotation)
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        text = "one of " + ", ".join(f"`{value}`" for value in typing.get_args(annotation))
    elif origin in (typing.Union, types.UnionType):
        names = {type_name(arg) for arg in typing.get_args(annotation)}
        text = "number" if names <= {"integer", "number"} else " or ".join(sorted(names))
    elif origin is list:
        [item] = typing.get_args(annotation)
        item = _unwrap(item)
        text = "list of objects" if inspect.isclass(item) and issubclass(item, BaseModel) else f"list of {type_name(item)}s"
    elif origin is dict:
        _, value = typing.get_args(annotation)
        value = _unwrap(value)
        text = "object of objects" if inspect.isclass(value) and issubclass(value, BaseModel) else "object"
    elif annotation is datetime:
        text = "instant"
    elif annotation is date:
        text = "date"
    else:
        text = {str: "string", int: "integer", float: "number", bool: "boolean"}.get(annotation, str(annotation))
    return f"{text} or null" if nullable else text


def _part(annotation):
    """The model inside a list or dict field, if any, and how its fields are named."""
    annotation, _ = _nullable(annotation)
    origin = typing.get_origin(annotation)
    inner = None
    if origin is list:
        inner, suffix = _unwrap(typing.get_args(annotation)[0]), "[]"
    elif origin is dict:
        inner, suffix = _unwrap(typing.get_args(annotation)[1]), ".<key>"
    if inspect.isclass(inner) and issubclass(inner, BaseModel):
        return inner, suffix
    return None, ""


def field_rows(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str]]:
    rows = []
    for name, info in model.model_fields.items():
        notes = info.description or ""
        rows.append((prefix + name, type_name(info.annotation), notes))
        part, suffix = _part(info.annotation)
        if part is not None:
            rows += field_rows(part, f"{prefix}{name}{suffix}.")
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def describe(contract: type[EventData]) -> str:
    return " ".join((contract.__doc__ or "").split())


def producer_section(producer: str, consumed: dict) -> str:
    lines = []
    for contract in contracts(producer):
        by = consumed.get((producer, contract.type)) or []
        lines += [f"### `{contract.type}` (version {contract.version})", "",
                  describe(contract) + (f" Consumed by {', '.join(by)}." if by else ""), "",
                  "| field | type | notes |", "|---|---|---|"]
        lines += [f"| `{name}` | {_cell(kind)} | {_cell(notes)} |" for name, kind, notes in field_rows(contract)]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def summary_section(consumed: dict) -> str:
    lines = ["| producer | event | version | data | consumed by |", "|---|---|---|---|---|"]
    for contract in all_contracts():
        fields = ", ".join(contract.model_fields)
        by = ", ".join(consumed.get((contract.producer, contract.type)) or []) or "—"
        lines.append(f"| {contract.producer} | [`{contract.type}`](events/{contract.producer}.md) "
                     f"| {contract.version} | `{fields}` | {by} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------ the files

def expected_sections() -> dict[Path, str]:
    consumed = consumers()
    sections = {ROOT / "docs" / "events.md": summary_section(consumed)}
    for producer in PRODUCERS:
        sections[ROOT / "docs" / "events" / f"{producer}.md"] = producer_section(producer, consumed)
    return sections


SECTION = re.compile(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), re.S)


def current_section(text: str) -> str | None:
    match = SECTION.search(text)
    return match.group(1) if match else None


def with_section(text: str, section: str) -> str:
    if current_section(text) is None:
        raise ValueError("no generated section (markers) in the file")
    return SECTION.sub(lambda _: f"{BEGIN}\n{section}{END}", text, count=1)


def stale() -> list[str]:
    """The docs whose generated section does not match the declarations."""
    return [str(path.relative_to(ROOT)) for path, section in expected_sections().items()
            if current_section(path.read_text()) != section]


def write() -> list[str]:
    changed = []
    for path, section in expected_sections().items():
        text = path.read_text()
        updated = with_section(text, section)
        if updated != text:
            path.write_text(updated)
            changed.append(str(path.relative_to(ROOT)))
    return changed


if __name__ == "__main__":
    for name in write():
        print(f"updated {name}")
    sys.exit(0)

"""Turning a message into words: the Jinja2 templates in ``templates/``
(``<kind>.<channel>.j2``; email templates have a ``subject`` and a ``body``
block) and the only facts they may see.

The minimum-necessary rule is enforced twice: templates are written without
clinical detail, and ``template_facts`` hands them an allow-list of fields,
so a diagnosis, drug, dose or score in an event cannot reach a message even
if a template asked for it (StrictUndefined makes that an error, not a
silent blank)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from common.money import money
from services.notifications.domain import DEFAULT_TIME_ZONE, Channel, Kind
from services.notifications.schemas import parse_instant

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

_env = Environment(
    loader=FileSystemLoader(str(TEMPLATES_DIR)),
    undefined=StrictUndefined,
    autoescape=False,  # plain-text email and SMS
    trim_blocks=True,
    keep_trailing_newline=False,
)
# "the clinic" (the default display name) opening a sentence or an SMS.
_env.filters["sentence"] = lambda text: str(text)[:1].upper() + str(text)[1:]

# What each kind's template may use from the message's stored facts.
ALLOWED_FACTS: dict[Kind, tuple[str, ...]] = {
    Kind.WELCOME: (),
    Kind.APPOINTMENT_CONFIRMATION: ("starts_at",),
    # Each entry's appointment_id and starts_at; only the times are shown.
    Kind.COURSE_CONFIRMATION: ("appointments",),
    Kind.APPOINTMENT_REMINDER: ("starts_at",),
    Kind.PREVISIT_INSTRUCTIONS: ("starts_at",),
    Kind.APPOINTMENT_MOVED: ("starts_at",),
    Kind.APPOINTMENT_CANCELLED: ("starts_at",),
    Kind.SESSION_FOLLOW_UP: (),
    # The link is built from the request id when the message is rendered.
    Kind.SELF_REPORT_REQUEST: ("request_id",),
    Kind.INVOICE_ISSUED: ("number", "total_cents", "currency", "due_date"),
    Kind.PAYMENT_RECEIPT: ("number", "amount_cents", "currency", "received_at"),
    Kind.INVOICE_OVERDUE: ("number", "balance_cents", "currency", "due_date"),
    Kind.REFUND_ISSUED: ("amount_cents", "currency", "issued_at"),
    # Answers to STOP, START and HELP: the clinic's name and phone only.
    Kind.SMS_OPT_OUT_CONFIRMATION: (),
    Kind.SMS_OPT_IN_CONFIRMATION: (),
    Kind.SMS_HELP_REPLY: (),
    Kind.STAFF_RISK_ALERT: ("mrn", "flags", "instrument", "response_id", "raised_at"),
    Kind.STAFF_VITALS_ALERT: ("mrn", "chair_id", "clinician_id", "session_id", "recorded_at", "alerts"),
}


@dataclass(frozen=True)
class Rendered:
    body: str
    subject: str | None = None


def _local(value, zone: str) -> datetime | None:
    moment = parse_instant(value)
    return moment.astimezone(ZoneInfo(zone)) if moment else None


def _when(local: datetime) -> str:
    return f"{local:%A %-d %B} at {local:%-I:%M %p} {local.tzname()}"


def _day(value) -> str:
    if value in (None, ""):
        return ""
    return f"{date.fromisoformat(str(value)[:10]):%-d %B %Y}"


def template_facts(kind: Kind, facts: dict, *, given_name: str | None, time_zone: str | None,
                   clinic: str, clinic_phone: str, now: datetime | None = None, link: str | None = None) -> dict:
    zone = time_zone or DEFAULT_TIME_ZONE
    allowed = {name: facts.get(name) for name in ALLOWED_FACTS[kind]}
    view: dict = {"clinic": clinic, "clinic_phone": clinic_phone, "given_name": given_name or "there"}
    if "starts_at" in allowed:
        local = _local(allowed["starts_at"], zone)
        today = (now or datetime.now(ZoneInfo("UTC"))).astimezone(ZoneInfo(zone)).date()
        view.update(when=_when(local), when_short=f"{local:%a %-d %b}", is_today=local.date() == today)
    if kind == Kind.COURSE_CONFIRMATION:
        starts = sorted(filter(None, (_local(entry.get("starts_at"), zone) for entry in allowed["appointments"] or ()
                                      if isinstance(entry, dict))))
        view.update(count=len(starts), dates=[_when(local) for local in starts],
                    dates_short=[f"{local:%a %-d %b %-I:%M %p}" for local in starts],
                    zone_name=starts[0].tzname() if starts else "")
    elif kind == Kind.SELF_REPORT_REQUEST:
        # Built by the caller from the request id (common.self_report_links).
        view["link"] = link or ""
    elif kind == Kind.INVOICE_ISSUED:
        view.update(number=allowed["number"], amount=money(allowed["total_cents"], allowed["currency"]),
                    due_date=_day(allowed["due_date"]))
    elif kind == Kind.PAYMENT_RECEIPT:
        received = _local(allowed["received_at"], zone)
        view.update(number=allowed["number"], amount=money(allowed["amount_cents"], allowed["currency"]),
                    received_on=f"{received:%-d %B %Y}" if received else "today")
    elif kind == Kind.REFUND_ISSUED:
        issued = _local(allowed["issued_at"], zone)
        view.update(amount=money(allowed["amount_cents"], allowed["currency"]),
                    issued_on=f"{issued:%-d %B %Y}" if issued else "today")
    elif kind == Kind.INVOICE_OVERDUE:
        view.update(number=allowed["number"], amount=money(allowed["balance_cents"], allowed["currency"]),
                    due_date=_day(allowed["due_date"]))
    elif kind in (Kind.STAFF_RISK_ALERT, Kind.STAFF_VITALS_ALERT):
        # Staff are told who by MRN only: an alert email may sit in a shared
        # inbox or on a locked phone screen.
        view = {"clinic": clinic, **{k: v for k, v in allowed.items()}}
        # Sessions may not know the MRN yet; the alert must still go out.
        view["mrn"] = allowed.get("mrn") or "MRN unknown"
        view["flags"] = [str(flag) for flag in (allowed.get("flags") or [])]
        view["alerts"] = [
            {key: alert.get(key) for key in ("code", "measure", "value", "threshold")}
            for alert in (allowed.get("alerts") or []) if isinstance(alert, dict)
        ]
    return view


def template_name(kind: Kind, channel: Channel) -> str:
    return f"{kind.value}.{channel.value}.j2"


def render(kind: Kind, channel: Channel, view: dict) -> Rendered:
    template = _env.get_template(template_name(kind, channel))
    if channel in (Channel.EMAIL, Channel.STAFF_EMAIL):
        context = template.new_context(view)
        subject = "".join(template.blocks["subject"](context)).strip()
        body = "".join(template.blocks["body"](context)).strip() + "\n"
        return Rendered(body=body, subject=" ".join(subject.split()))
    return Rendered(body=" ".join(template.render(view).split()))


def staff_webhook_body(kind: Kind, notification_id: str, view: dict) -> str:
    """Staff alerts to a paging or chat system: the same MRN-only facts."""
    return json.dumps({"type": "staff_alert", "kind": kind.value, "notification_id": notification_id,
                       **{k: v for k, v in view.items() if k != "clinic"}}, sort_keys=True)


def available_templates() -> list[tuple[Kind, Channel]]:
    pairs = []
    for path in sorted(TEMPLATES_DIR.glob("*.j2")):
        kind, channel, _ = path.name.split(".")
        pairs.append((Kind(kind), Channel(channel)))
    return pairs

"""The outside world a message goes to: SMTP, the SMS provider's HTTP API
and webhook receivers. Each send returns a ``domain.Outcome`` with the
provider's short answer and never raises, so the scheduler's bookkeeping
is the same for every channel.

Webhook signature (documented for receivers in docs/rpc/notifications.md):
``X-Clinic-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>``
with ``X-Clinic-Timestamp: <unix seconds>``; signing the timestamp too lets a
receiver refuse a replayed request."""
from __future__ import annotations

import hashlib
import hmac
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate

import httpx
from nameko.extensions import DependencyProvider

from services.notifications.domain import DEFAULT_DISPLAY_NAME, Outcome

SIGNATURE_HEADER = "X-Clinic-Signature"
TIMESTAMP_HEADER = "X-Clinic-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str | None, signature: str | None, body: bytes, *,
           tolerance_seconds: int = 300, now: float | None = None) -> bool:
    """What a receiver runs: a matching signature on a recent timestamp."""
    if not timestamp or not signature:
        return False
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance_seconds and hmac.compare_digest(sign(secret, timestamp, body), signature)


@dataclass(frozen=True)
class Subscriber:
    name: str
    url: str
    secret: str
    events: tuple[str, ...] = ()

    def wants(self, event_type: str) -> bool:
        return "*" in self.events or event_type in self.events


@dataclass(frozen=True)
class ChannelSettings:
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_tls: str = "none"  # none, starttls, ssl
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "clinic@localhost"
    # The sender's name as patients see it: the clinic's display name.
    smtp_from_name: str | None = None
    smtp_timeout: float = 10.0
    sms_url: str | None = None
    sms_key: str | None = None
    sms_from: str | None = None
    http_timeout: float = 10.0
    webhooks: tuple[Subscriber, ...] = ()
    staff_emails: tuple[str, ...] = ()
    staff_webhook: Subscriber | None = None

    @classmethod
    def from_config(cls, section: dict) -> "ChannelSettings":
        staff_hook = section.get("STAFF_WEBHOOK") or None
        return cls(
            smtp_host=str(section.get("SMTP_HOST", "127.0.0.1")),
            smtp_port=int(section.get("SMTP_PORT", 1025)),
            smtp_tls=str(section.get("SMTP_TLS") or "none").lower(),
            smtp_user=section.get("SMTP_USER") or None,
            smtp_password=section.get("SMTP_PASSWORD") or None,
            smtp_from=str(section.get("SMTP_FROM") or "clinic@localhost"),
            smtp_from_name=str(section.get("CLINIC_DISPLAY_NAME") or section.get("CLINIC_NAME")
                               or DEFAULT_DISPLAY_NAME),
            smtp_timeout=float(section.get("SMTP_TIMEOUT", 10)),
            sms_url=section.get("SMS_URL") or None,
            sms_key=section.get("SMS_KEY") or None,
            sms_from=section.get("SMS_FROM") or None,
            http_timeout=float(section.get("HTTP_TIMEOUT", 10)),
            webhooks=tuple(_subscriber(entry) for entry in section.get("WEBHOOKS") or ()),
            staff_emails=_addresses(section.get("STAFF_ALERT_EMAILS")),
            staff_webhook=_subscriber({"name": "staff", **staff_hook}) if staff_hook and staff_hook.get("url") else None,
        )

    def subscriber(self, name: str) -> Subscriber | None:
        if self.staff_webhook is not None and name == self.staff_webhook.name:
            return self.staff_webhook
        return next((s for s in self.webhooks if s.name == name), None)


def _subscriber(entry: dict) -> Subscriber:
    # A subscriber names what it receives: events carry patient details, so
    # nothing is forwarded by default.
    events = entry.get("events") or ()
    if isinstance(events, str):
        events = [e.strip() for e in events.split(",") if e.strip()]
    return Subscriber(str(entry.get("name") or entry["url"]), str(entry["url"]), str(entry.get("secret") or ""),
                      tuple(events))


def _addresses(value) -> tuple[str, ...]:
    if not value:
        return ()
    if isinstance(value, str):
        value = value.split(",")
    return tuple(a.strip() for a in value if a and a.strip())


def _short(text: str, limit: int = 300) -> str:
    return " ".join(str(text).split())[:limit]


class Sender:
    def __init__(self, settings: ChannelSettings):
        self.settings = settings

    def build_email(self, to: list[str], subject: str, body: str, message_id: str) -> EmailMessage:
        s = self.settings
        message = EmailMessage()
        message["From"] = formataddr((s.smtp_from_name, s.smtp_from)) if s.smtp_from_name else s.smtp_from
        message["To"] = ", ".join(to)
        message["Subject"] = subject
        message["Date"] = formatdate(usegmt=True)
        # Stable per notification, so a mail system can spot a resend after
        # a crash between "accepted" and "recorded".
        message["Message-ID"] = f"<{message_id}@notifications.clinic>"
        message.set_content(body)
        return message

    def email(self, to: list[str], subject: str, body: str, message_id: str) -> Outcome:
        s = self.settings
        message = self.build_email(to, subject, body, message_id)
        try:
            if s.smtp_tls == "ssl":
                client = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout,
                                          context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout)
            with client:
                if s.smtp_tls == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if s.smtp_user:
                    client.login(s.smtp_user, s.smtp_password or "")
                refused = client.send_message(message)
                code, answer = client.noop()
        except smtplib.SMTPRecipientsRefused as exc:
            return Outcome(False, _short(f"recipient refused: {exc.recipients}"), permanent=True)
        except smtplib.SMTPResponseException as exc:
            # 5xx is the server's final word; 4xx may pass.
            return Outcome(False, _short(f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"), permanent=exc.smtp_code >= 500)
        except (OSError, smtplib.SMTPException) as exc:
            return Outcome(False, _short(f"SMTP unreachable: {type(exc).__name__}: {exc}"))
        if refused:
            return Outcome(False, _short(f"recipient refused: {sorted(refused)}"), permanent=True)
        return Outcome(True, _short(f"SMTP accepted by {s.smtp_host}:{s.smtp_port}"))

    def sms(self, to: str, body: str, reference: str) -> Outcome:
        s = self.settings
        if not s.sms_url:
            return Outcome(False, "SMS provider not configured (NOTIFICATIONS.SMS_URL is unset)", permanent=True)
        headers = {"Idempotency-Key": reference}
        if s.sms_key:
            headers["Authorization"] = f"Bearer {s.sms_key}"
        payload = {"to": to, "body": body, "reference": reference}
        if s.sms_from:
            payload["from"] = s.sms_from
        return self._post(s.sms_url, json_body=payload, headers=headers)

    def webhook(self, subscriber: Subscriber | None, body: str, delivery_id: str, event_type: str) -> Outcome:
        if subscriber is None:
            return Outcome(False, "webhook subscriber no longer configured", permanent=True)
        raw = body.encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(subscriber.secret, timestamp, raw),
            "X-Clinic-Event-Type": event_type,
            # Receivers dedupe on this: a retry after a lost answer repeats it.
            "X-Clinic-Delivery": delivery_id,
        }
        return self._post(subscriber.url, raw_body=raw, headers=headers)

    def _post(self, url: str, *, headers: dict, json_body=None, raw_body: bytes | None = None) -> Outcome:
        try:
            answer = httpx.post(url, json=json_body, content=raw_body, headers=headers,
                                timeout=self.settings.http_timeout)
        except httpx.HTTPError as exc:
            return Outcome(False, _short(f"{type(exc).__name__}: {exc}"))
        text = _short(f"HTTP {answer.status_code} {answer.text}")
        if answer.is_success:
            return Outcome(True, text)
        # A 4xx other than timeout/rate-limit will not change by retrying.
        permanent = 400 <= answer.status_code < 500 and answer.status_code not in (408, 409, 425, 429)
        return Outcome(False, text, permanent=permanent)


class Channels(DependencyProvider):
    """``self.channels`` in the service: a Sender built from the
    ``NOTIFICATIONS`` configuration section."""

    def setup(self):
        self.settings = ChannelSettings.from_config(self.container.config.get("NOTIFICATIONS") or {})

    def get_dependency(self, worker_ctx):
        return Sender(self.settings)

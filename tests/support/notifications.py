"""Real servers standing in for the outside world of the notifications
service: an SMTP server (aiosmtpd, in a subprocess so its asyncio loop is
untouched by eventlet's monkey patching) writing to a Maildir, and an HTTP
receiver that records requests (the SMS provider, webhook subscribers)
and, for webhooks, verifies the signature as a real receiver would."""
from __future__ import annotations

import json
import mailbox
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser

import eventlet
from eventlet import wsgi

from services.notifications.channels import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from tests.support.net import free_port


def _wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout}s")
        eventlet.sleep(0.05)


def _port_open(port: int) -> bool:
    probe = socket.socket()
    probe.settimeout(0.2)
    try:
        return probe.connect_ex(("127.0.0.1", port)) == 0
    finally:
        probe.close()


class SmtpServer:
    """``python -m aiosmtpd`` with the Mailbox handler; ``stop()`` and
    ``start()`` again on the same port simulate an outage."""

    def __init__(self):
        self.port = free_port()
        self.mail_dir = tempfile.mkdtemp(prefix="clinic-smtp-")
        os.rmdir(self.mail_dir)  # Maildir creates it with its cur/new/tmp
        self.process: subprocess.Popen | None = None

    def start(self) -> "SmtpServer":
        self.process = subprocess.Popen(
            [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{self.port}",
             "-c", "aiosmtpd.handlers.Mailbox", self.mail_dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        _wait_until(lambda: _port_open(self.port), 10, "the test SMTP server did not start")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None
        _wait_until(lambda: not _port_open(self.port), 5, "the test SMTP server did not stop")

    def messages(self) -> list:
        if not os.path.isdir(self.mail_dir):
            return []
        box = mailbox.Maildir(self.mail_dir, factory=None, create=False)
        parser = BytesParser(policy=policy.default)
        return [parser.parsebytes(box.get_bytes(key)) for key in box.keys()]

    def wait_for(self, count: int, timeout: float = 10, where=lambda m: True) -> list:
        _wait_until(lambda: len([m for m in self.messages() if where(m)]) >= count, timeout,
                    f"fewer than {count} email(s) arrived")
        return [m for m in self.messages() if where(m)]

    def config(self) -> dict:
        return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": self.port, "SMTP_TIMEOUT": 2}


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    verified: bool | None

    def json(self):
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """Answers 200 to each POST and records it. ``secrets`` maps a path to
    the webhook secret it checks (a bad signature gets 401 and is recorded
    with ``verified=False``); ``fail_next`` answers 503 that many times."""

    secrets: dict = field(default_factory=dict)
    fail_next: int = 0
    received: list = field(default_factory=list)

    def start(self) -> "HttpReceiver":
        self.port = free_port()
        self.listener = eventlet.listen(("127.0.0.1", self.port))
        self.server = eventlet.spawn(wsgi.server, self.listener, self._app, log_output=False)
        return self

    def stop(self) -> None:
        self.server.kill()
        self.listener.close()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _app(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {key[5:].replace("_", "-").title(): value for key, value in environ.items()
                   if key.startswith("HTTP_")}
        headers["Content-Type"] = environ.get("CONTENT_TYPE", "")
        path = environ.get("PATH_INFO", "/")
        verified = None
        if path in self.secrets:
            verified = verify(self.secrets[path], headers.get(TIMESTAMP_HEADER.title()),
                              headers.get(SIGNATURE_HEADER.title()), body)
        self.received.append(Received(path, headers, body, verified))
        if verified is False:
            start_response("401 Unauthorized", [("Content-Type", "application/json")])
            return [b'{"error": "bad signature"}']
        if self.fail_next > 0:
            self.fail_next -= 1
            start_response("503 Service Unavailable", [("Content-Type", "application/json")])
            return [b'{"error": "try later"}']
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"id": f"msg-{len(self.received)}", "status": "accepted"}).encode()]

    def requests(self, path: str | None = None) -> list[Received]:
        return [r for r in self.received if path is None or r.path == path]

    def wait_for(self, count: int, path: str | None = None, timeout: float = 10) -> list[Received]:
        _wait_until(lambda: len(self.requests(path)) >= count, timeout, f"fewer than {count} request(s) to {path}")
        return self.requests(path)


def wait_until(check, timeout: float = 10, what: str = "condition not met") -> None:
    _wait_until(check, timeout, what)


# ---------------------------------------------------------------- events

PATIENT_FACTS = {
    "mrn": "MRN0000042", "given_name": "Ana", "family_name": "Lopez", "date_of_birth": "1980-02-03",
    "sex": "female", "phone": "+14155550123", "email": "ana@example.com", "time_zone": "America/Los_Angeles",
    "diagnosis_codes": ["F33.2"],
}


def iso_in(seconds: float) -> str:
    from datetime import datetime, timedelta, timezone

    moment = datetime.now(timezone.utc) + timedelta(seconds=seconds)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def zone_where_it_is(hour: int) -> str:
    """A fixed-offset time zone where the wall clock now shows ``hour``:xx,
    so a test about quiet hours does not depend on when it runs."""
    from datetime import datetime, timezone

    shift = (hour - datetime.now(timezone.utc).hour) % 24
    shift = shift - 24 if shift > 12 else shift
    return "Etc/GMT" if shift == 0 else f"Etc/GMT{'-' if shift > 0 else '+'}{abs(shift)}"  # Etc/ signs are inverted


def register_patient(amqp_uri: str, patient_id: str, consents=("email", "sms"), **facts) -> None:
    """What intake publishes for a registered patient who consented."""
    from tests.support.events import publish_event

    publish_event(amqp_uri, "intake", "patient.registered", {"patient_id": patient_id, **PATIENT_FACTS, **facts})
    for kind in consents:
        publish_event(amqp_uri, "intake", "consent.recorded", {
            "patient_id": patient_id, "consent_id": f"c-{kind}-{patient_id}", "kind": kind, "status": "granted",
            "effective_at": iso_in(0)})


def appointment_facts(patient_id: str, appointment_id: str, starts_in_seconds: float) -> dict:
    return {"patient_id": patient_id, "appointment_id": appointment_id, "plan_id": "plan-1", "kind": "induction",
            "sequence": 1, "starts_at": iso_in(starts_in_seconds), "ends_at": iso_in(starts_in_seconds + 3600),
            "route": "iv_infusion", "chair_id": "chair-2", "clinician_id": "dr.who", "course_id": None}

"""Starting the demo clinic: a mail catcher and an SMS-provider stand-in,
then ``clinic run all`` on fresh SQLite files, on ports of its own
(CLINIC_PORTS) and, when the management API allows, in a vhost of its own,
so a clinic already running on this machine and broker is left alone.

The demo clinic differs from a real one in three settings only: its time
zone is chosen so that it is mid-morning there whenever the demo runs, it
is open every day, and it books on a one-minute grid so that a two-hour
reminder comes due while you watch.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import httpx

from common.config import PROJECT_ROOT
from common.rabbitmq import throwaway_vhost
from demo.timing import wait_until

TOKENS = {"front_desk": "demo-front", "clinician": "demo-clinician", "billing": "demo-billing", "admin": "demo-admin"}
SERVICE_ORDER = ("gateway", "intake", "sessions", "billing", "notifications")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def mid_morning_zone(now: datetime) -> str:
    """A fixed-offset zone where it is about 10:00 now."""
    offset = 10 - now.hour
    if offset < -12:
        offset += 24
    if offset > 14:
        offset -= 24
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


@dataclass
class RunningClinic:
    gateway: str
    data_dir: Path
    mail_file: Path
    sms_file: Path
    clinic_zone: str
    env: dict = field(default_factory=dict)


def _process(stack: ExitStack, command: list[str], env: dict, log: Path) -> subprocess.Popen:
    out = stack.enter_context(open(log, "ab"))
    child = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)

    def stop():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()

    stack.callback(stop)
    return child


@contextmanager
def running_clinic(data_dir: Path, amqp_uri: str):
    now = datetime.now(timezone.utc)
    zone = mid_morning_zone(now)
    # Every process `clinic run all` starts gets a free port, so the demo
    # never collides with a clinic already running on the default ones.
    ports = {name: free_port() for name in (*SERVICE_ORDER, "patient-pages")}
    mail_port, sms_port = free_port(), free_port()
    mail_file, sms_file = data_dir / "mail.jsonl", data_dir / "sms.jsonl"
    with ExitStack() as stack:
        try:
            uri = stack.enter_context(throwaway_vhost(amqp_uri, "clinic-demo"))
        except httpx.HTTPError:  # no management API: the broker's default vhost
            uri = amqp_uri
        env = {
            **os.environ,
            "PYTHONWARNINGS": "ignore",
            "AMQP_URI": uri,
            # The gateway's /api/v1/health asks the services on these ports too.
            "CLINIC_PORTS": ",".join(f"{name}={port}" for name, port in ports.items()),
            "GATEWAY_TOKENS": ",".join(f"{token}:{role}:{role.replace('_', '-')}-demo" for role, token in TOKENS.items()),
            "CLINIC_TIME_ZONE": zone, "CLINIC_OPENS": "06:00", "CLINIC_CLOSES": "22:00",
            "CLINIC_DAYS": "[mon, tue, wed, thu, fri, sat, sun]", "BOOKING_GRID_MINUTES": "1",
            "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(mail_port),
            "SMS_URL": f"http://127.0.0.1:{sms_port}/messages", "SMS_KEY": "demo",
            "STAFF_ALERT_EMAILS": "on-duty@demo-clinic.localhost",
            "NOTIFY_RETRY_BASE_SECONDS": "2", "NOTIFY_RETRY_CAP_SECONDS": "10",
            "CLINIC_NAME": "Demo Ketamine Clinic",
        }
        for name in ("intake", "sessions", "billing", "notifications"):
            env[f"{name.upper()}_DATABASE_URL"] = f"sqlite:///{data_dir / (name + '.sqlite3')}"
        python = sys.executable
        for kind, port, out in (("smtp", mail_port, mail_file), ("sms", sms_port, sms_file)):
            _process(stack, [python, "-m", "demo.catchers", kind, "--port", str(port), "--out", str(out)], env,
                     data_dir / f"{kind}-catcher.log")
        clinic = _process(stack, [python, "-m", "cli", "run", "all"], env, data_dir / "clinic.log")
        gateway = f"http://127.0.0.1:{ports['gateway']}"

        def ready():
            if clinic.poll() is not None:
                raise RuntimeError(f"the clinic stopped (exit {clinic.returncode}); see {data_dir / 'clinic.log'}")
            try:
                return httpx.get(f"{gateway}/api/v1/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, 120, "every service to report ready", interval=0.5)
        yield RunningClinic(gateway, data_dir, mail_file, sms_file, zone, env)

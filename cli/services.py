"""What runs where: each service's nameko class and HTTP port, and the
environment a service process is started with."""
from __future__ import annotations

import importlib.util
import os
import sys

# name -> (nameko service path, default HTTP port for /health, /ready, /metrics)
SERVICES = {
    "intake": ("services.intake.service:IntakeService", 8001),
    "sessions": ("services.sessions.service:SessionsService", 8002),
    "billing": ("services.billing.service:BillingService", 8003),
    "notifications": ("services.notifications.service:NotificationsService", 8004),
    "gateway": ("gateway.service:GatewayService", 8000),
    # What patients open from a self-report link; apart from the staff API.
    "patient-pages": ("patient_pages.service:PatientPagesService", 8010),
}
# Processes without a database of their own.
WITHOUT_DATABASE = ("gateway", "patient-pages")

# Any-address binds, which a probe on the same host reaches on loopback.
_ANY_ADDRESS = ("", "0.0.0.0", "::", "[::]")


def available_services() -> list[str]:
    """Services whose code exists in this checkout, in start order."""
    found = []
    for name, (target, _) in SERVICES.items():
        module = target.split(":")[0]
        if importlib.util.find_spec(module.rsplit(".", 1)[0]) and importlib.util.find_spec(module):
            found.append(name)
    return found


def has_database(name: str) -> bool:
    return name not in WITHOUT_DATABASE


def services_with_databases(asked: list[str]) -> list[str] | None:
    """The services named (all that have a database when none are), or None
    after saying which names are unknown."""
    names = asked or [n for n in available_services() if has_database(n)]
    unknown = [n for n in names if n not in SERVICES or not has_database(n)]
    if unknown:
        print(f"unknown service(s): {', '.join(unknown)}", file=sys.stderr)
        return None
    return names


def port_map(environ=os.environ) -> dict[str, int]:
    """Every service's HTTP port: CLINIC_PORTS ("gateway=18480,intake=18481,…")
    overrides the defaults, so a second clinic (the demo) can run beside one."""
    overrides = dict(part.split("=", 1) for part in environ.get("CLINIC_PORTS", "").split(",") if "=" in part)
    return {name: int(overrides.get(name, default)) for name, (_, default) in SERVICES.items()}


def service_port(name: str, environ=os.environ) -> int:
    return port_map(environ)[name]


def bind_host(environ=os.environ) -> str:
    return environ.get("CLINIC_BIND", "127.0.0.1")


def health_urls(environ=os.environ) -> dict[str, str]:
    """Where the gateway asks each service's /ready: the addresses the same
    port map gives them, so moving the ports moves the probes too."""
    host = bind_host(environ)
    if host in _ANY_ADDRESS:
        host = "127.0.0.1"
    ports = port_map(environ)
    return {name: f"http://{host}:{ports[name]}" for name in SERVICES if has_database(name)}


def service_env(name: str, environ=os.environ) -> dict:
    """The environment ``clinic run`` gives a service process. Variables set
    explicitly (a compose file's WEB_SERVER_ADDRESS, *_HEALTH_URL) win."""
    env = dict(environ)
    env.setdefault("WEB_SERVER_ADDRESS", f"{bind_host(environ)}:{service_port(name, environ)}")
    if name == "gateway":
        for service, url in health_urls(environ).items():
            env.setdefault(f"{service.upper()}_HEALTH_URL", url)
    # Names the process in every JSON log line, even outside a worker.
    env["CLINIC_SERVICE"] = name
    env.setdefault("PYTHONWARNINGS", "ignore")
    return env

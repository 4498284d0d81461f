"""``clinic``: the one command for running and operating the clinic.

    clinic run all            migrate, then run every service and the gateway
    clinic run SERVICE        migrate, then run one service (what a container runs)
    clinic migrate [SERVICE]  apply database migrations
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
import time
from urllib.parse import urlsplit, urlunsplit

from common.config import PROJECT_ROOT, config_path, database_url, load_config

# name -> (nameko service path, default HTTP port for /health, /ready, /metrics)
SERVICES = {
    "intake": ("services.intake.service:IntakeService", 8001),
    "sessions": ("services.sessions.service:SessionsService", 8002),
    "billing": ("services.billing.service:BillingService", 8003),
    "notifications": ("services.notifications.service:NotificationsService", 8004),
    "gateway": ("gateway.service:GatewayService", 8000),
}

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_BROKER_DOWN = 0, 1, 2, 3


def available_services() -> list[str]:
    """Services whose code exists in this checkout, in start order."""
    found = []
    for name, (target, _) in SERVICES.items():
        module = target.split(":")[0]
        if importlib.util.find_spec(module.rsplit(".", 1)[0]) and importlib.util.find_spec(module):
            found.append(name)
    return found


def has_database(name: str) -> bool:
    return name != "gateway"


def redact(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return uri


def check_broker(config: dict) -> bool:
    from common.service import broker_reachable

    uri = config["AMQP_URI"]
    if broker_reachable(uri, timeout=3):
        return True
    print(
        f"RabbitMQ is not reachable at {redact(uri)}. Start it (Debian: `rabbitmq-server -detached`; "
        "Docker: `docker compose up -d rabbitmq`) or point AMQP_URI at a running broker.",
        file=sys.stderr,
    )
    return False


def migrate(config: dict, names: list[str]) -> None:
    from common.migrations import upgrade

    for name in names:
        if has_database(name):
            upgrade(name, database_url(config, name))
            print(f"migrated {name}", flush=True)


def cmd_migrate(args) -> int:
    config = load_config()
    names = args.services or [n for n in available_services() if has_database(n)]
    unknown = [n for n in names if n not in SERVICES or not has_database(n)]
    if unknown:
        print(f"unknown service(s): {', '.join(unknown)}", file=sys.stderr)
        return EXIT_USAGE
    migrate(config, names)
    return EXIT_OK


def service_env(name: str) -> dict:
    env = dict(os.environ)
    port = SERVICES[name][1]
    env.setdefault("WEB_SERVER_ADDRESS", f"{os.environ.get('CLINIC_BIND', '127.0.0.1')}:{port}")
    env.setdefault("PYTHONWARNINGS", "ignore")
    return env


def cmd_run(args) -> int:
    target = args.service
    if target == "all":
        return run_all()
    if target not in SERVICES:
        print(f"unknown service {target!r}; choose from all, {', '.join(SERVICES)}", file=sys.stderr)
        return EXIT_USAGE
    config = load_config()
    if not check_broker(config):
        return EXIT_BROKER_DOWN
    if has_database(target) and not os.environ.get("CLINIC_SKIP_MIGRATE"):
        migrate(config, [target])
    env = service_env(target)
    command = [sys.executable, "-m", "nameko", "run", "--config", str(config_path()), SERVICES[target][0]]
    os.chdir(PROJECT_ROOT)
    os.execvpe(command[0], command, env)
    return EXIT_FAILURE  # pragma: no cover


def run_all() -> int:
    config = load_config()
    if not check_broker(config):
        return EXIT_BROKER_DOWN
    names = available_services()
    # Migrate once, up front, so the services start in parallel afterwards.
    migrate(config, [n for n in names if has_database(n)])
    children: dict[str, subprocess.Popen] = {}
    for name in names:
        env = service_env(name)
        env["CLINIC_SKIP_MIGRATE"] = "1"
        children[name] = subprocess.Popen(
            [sys.executable, "-m", "common.cli", "run", name], env=env, cwd=PROJECT_ROOT,
            # Their own session: a terminal's Ctrl-C reaches only this runner,
            # which then stops each service exactly once.
            start_new_session=True,
        )
    gateway = f"http://{service_env('gateway')['WEB_SERVER_ADDRESS']}"
    print(f"clinic running: {', '.join(names)}", flush=True)
    print(f"gateway listening on {gateway}/api/v1/  (OpenAPI: {gateway}/api/v1/openapi.json)", flush=True)
    print("stop with Ctrl-C", flush=True)

    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = EXIT_OK
    while not stopping:
        for name, child in children.items():
            if child.poll() is not None:
                print(f"{name} exited with {child.returncode}; stopping the clinic", file=sys.stderr)
                exit_code, stopping = EXIT_FAILURE, True
                break
        time.sleep(0.5)
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    return exit_code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clinic", description="Run and operate the clinic services.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="migrate and run services")
    run.add_argument("service", help=f"all, or one of: {', '.join(SERVICES)}")
    run.set_defaults(func=cmd_run)

    mig = commands.add_parser("migrate", help="apply database migrations")
    mig.add_argument("services", nargs="*", help="services to migrate (default: all)")
    mig.set_defaults(func=cmd_migrate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

"""``clinic run``: migrate, then run one service in the foreground (what a
container runs), or every service and the gateway under one supervisor."""
from __future__ import annotations

import logging
import logging.config
import os
import signal
import subprocess
import sys
import time

from cli.console import EXIT_BROKER_DOWN, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, broker_unreachable_message
from cli.migrate import migrate_or_explain
from cli.services import SERVICES, available_services, has_database, service_env
from common.config import PROJECT_ROOT, config_path, load_config

# How long stopped services get to finish their workers before being killed.
STOP_GRACE_SECONDS = 15


def runner_log(service: str | None = None) -> tuple[dict, logging.Logger]:
    """The configuration, and a logger for the runner's own lines (migrated,
    where the gateway listens, a service that exited). They go through the
    same LOGGING section as the services' lines, so with LOG_FORMAT=json
    every line a container writes is one JSON object."""
    if service:
        os.environ["CLINIC_SERVICE"] = service  # read by config.yaml's JSON formatter
    config = load_config()
    if config.get("LOGGING"):
        logging.config.dictConfig(config["LOGGING"])
    else:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    return config, logging.getLogger("clinic.run")


def broker_or_explain(config: dict, log: logging.Logger) -> bool:
    from common.service import broker_reachable

    if broker_reachable(config["AMQP_URI"], timeout=3):
        return True
    log.error(broker_unreachable_message(config["AMQP_URI"]))
    return False


def cmd_run(args) -> int:
    target = args.service
    if target == "all":
        return run_all()
    if target not in SERVICES:
        print(f"unknown service {target!r}; choose from all, {', '.join(SERVICES)}", file=sys.stderr)
        return EXIT_USAGE
    config, log = runner_log(target)
    if not broker_or_explain(config, log):
        return EXIT_BROKER_DOWN
    if has_database(target) and not os.environ.get("CLINIC_SKIP_MIGRATE"):
        code = migrate_or_explain(config, [target], report=log.info, complain=log.error)
        if code != EXIT_OK:
            return code
    env = service_env(target)
    command = [sys.executable, "-m", "nameko", "run", "--config", str(config_path()), SERVICES[target][0]]
    os.chdir(PROJECT_ROOT)
    os.execvpe(command[0], command, env)
    return EXIT_FAILURE  # pragma: no cover


def run_all() -> int:
    config, log = runner_log()
    if not broker_or_explain(config, log):
        return EXIT_BROKER_DOWN
    names = available_services()
    # Migrate once, up front, so the services start in parallel afterwards.
    code = migrate_or_explain(config, [n for n in names if has_database(n)], report=log.info, complain=log.error)
    if code != EXIT_OK:
        return code
    children: dict[str, subprocess.Popen] = {}
    for name in names:
        env = service_env(name)
        env["CLINIC_SKIP_MIGRATE"] = "1"
        children[name] = subprocess.Popen(
            [sys.executable, "-m", "cli", "run", name], env=env, cwd=PROJECT_ROOT,
            # Their own session: a terminal's Ctrl-C reaches only this runner,
            # which then stops each service exactly once.
            start_new_session=True,
        )
    gateway = f"http://{service_env('gateway')['WEB_SERVER_ADDRESS']}"
    log.info("clinic running: %s", ", ".join(names))
    log.info("gateway listening on %s/api/v1/  (OpenAPI: %s/api/v1/openapi.json)", gateway, gateway)
    log.info("stop with Ctrl-C")
    return supervise(children, log)


def supervise(children: dict[str, subprocess.Popen], log: logging.Logger) -> int:
    """Until a signal or a child's exit, then stop every child once."""
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
                log.error("%s exited with %s; stopping the clinic", name, child.returncode)
                exit_code, stopping = EXIT_FAILURE, True
                break
        time.sleep(0.5)
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    return exit_code


def add_parser(commands) -> None:
    run = commands.add_parser("run", help="migrate and run services",
                              description="Apply the service's migrations, then run it in the foreground. "
                                          "CLINIC_PORTS (gateway=8000,intake=8001,…) moves the services' "
                                          "ports, CLINIC_BIND the address they listen on, and "
                                          "CLINIC_SKIP_MIGRATE=1 starts without migrating.")
    run.add_argument("service", help=f"all, or one of: {', '.join(SERVICES)}")
    run.set_defaults(func=cmd_run)

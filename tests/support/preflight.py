"""What ``bin/run-tests`` checks before pytest starts: RabbitMQ, its
management API (each test gets a vhost of its own through it) and
PostgreSQL, each with one line saying how to fix what is missing.

A management plugin that is off on this machine's own broker is turned on
(``rabbitmq-plugins enable rabbitmq_management``, as ``.ci/run`` does) and
its API waited for, so a fresh machine needs no manual step. A remote
broker is only reported: its plugins are its operator's business.

    python -m tests.support.preflight AMQP_URI POSTGRES_URL

prints the management API's URL with credentials (what nameko's test
plugin takes as ``--rabbit-ctl-uri``) and exits 0, or names the problems on
stderr and exits 1.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

from common.rabbitmq import ManagementApi, management_url_with_credentials

ENABLE = ["enable", "rabbitmq_management"]
ENABLE_COMMAND = "rabbitmq-plugins " + " ".join(ENABLE)
# The plugin starts its HTTP listener a few seconds after being enabled;
# a loaded machine may take much longer.
API_WAIT_SECONDS = 60


def say(message: str) -> None:
    print(f"run-tests: {message}", file=sys.stderr, flush=True)


def is_local(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in ("localhost", "::1", socket.gethostname()) or host.startswith("127.")


def ensure_management_api(api, *, wait_seconds: float = API_WAIT_SECONDS) -> str | None:
    """None once the management API answers, else the problem in one line.
    ``api`` has ``url`` and ``reachable()`` (a common.rabbitmq.ManagementApi)."""
    if api.reachable():
        return None
    where = api.url
    tool = shutil.which("rabbitmq-plugins")
    if not is_local(where):
        return (f"RabbitMQ's management API is not reachable at {where}; enable it on the broker's host: "
                f"{ENABLE_COMMAND} (or set RABBITMQ_MANAGEMENT_URL)")
    if tool is None:
        return f"RabbitMQ's management API is not reachable at {where}; enable it: {ENABLE_COMMAND}"
    say(f"enabling RabbitMQ's management plugin ({ENABLE_COMMAND})")
    try:
        done = subprocess.run([tool, *ENABLE], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return f"`{ENABLE_COMMAND}` did not finish within 120 s; run it by hand"
    if done.returncode != 0:
        reason = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["no output"]
        return f"`{ENABLE_COMMAND}` failed (exit {done.returncode}: {reason[0][:200]}); run it as the broker's user"
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        if api.reachable():
            return None
        time.sleep(1)
    return (f"the management plugin was enabled but its API did not answer at {where} "
            f"within {wait_seconds:.0f} s")


def broker_problem(amqp_uri: str) -> str | None:
    import kombu

    try:
        with kombu.Connection(amqp_uri, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1, timeout=3)
        return None
    except Exception as exc:
        return (f"RabbitMQ is not reachable at {amqp_uri.split('@')[-1]} ({type(exc).__name__}); "
                "start it: rabbitmq-server -detached")


def postgres_problem(url: str) -> str | None:
    import sqlalchemy as sa

    from common.config import driver_url

    try:
        engine = sa.create_engine(driver_url(url), poolclass=sa.pool.NullPool)
        engine.connect().close()
        return None
    except Exception as exc:
        return (f"PostgreSQL is not reachable at {url.split('@')[-1]} ({type(exc).__name__}); "
                "start it or set TEST_POSTGRES_URL")


def main(argv: list[str]) -> int:
    amqp_uri, postgres_url = argv
    problems = [broker_problem(amqp_uri)]
    if problems[0] is None:  # a broker that is down has no plugins to enable
        problems.append(ensure_management_api(ManagementApi(amqp_uri, timeout=3)))
    problems.append(postgres_problem(postgres_url))
    problems = [problem for problem in problems if problem]
    for problem in problems:
        say(problem)
    if problems:
        return 1
    print(management_url_with_credentials(amqp_uri))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

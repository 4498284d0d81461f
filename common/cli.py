"""``clinic``: the one command for running and operating the clinic.

    clinic run all                  migrate, then run every service and the gateway
    clinic run SERVICE              migrate, then run one service (what a container runs)
    clinic migrate [SERVICE...]     apply database migrations
    clinic queues                   queue depths and consumer counts on the broker
    clinic outbox [SERVICE...]      events committed but not yet published, per service
    clinic dead-letters list        messages whose handler failed for good, with the error
    clinic dead-letters replay      send them back to the handler that failed
    clinic dead-letters discard     give up on them for good, saying who and why
    clinic token --role R --user U  a new API token and its GATEWAY_TOKENS entry
    clinic health [--live]          probe this process's /ready (container health check)

Exit codes (``EXIT_*`` below): 0 done; 1 failed; 2 bad usage; 3 RabbitMQ
unreachable; 4 a database unreachable; 5 done, but something needs an
operator (an old outbox backlog, dead letters with --fail-if-any).
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager
from urllib.parse import quote, urlsplit, urlunsplit

from common.config import PROJECT_ROOT, config_path, database_url, load_config

# name -> (nameko service path, default HTTP port for /health, /ready, /metrics)
SERVICES = {
    "intake": ("services.intake.service:IntakeService", 8001),
    "sessions": ("services.sessions.service:SessionsService", 8002),
    "billing": ("services.billing.service:BillingService", 8003),
    "notifications": ("services.notifications.service:NotificationsService", 8004),
    "gateway": ("gateway.service:GatewayService", 8000),
}

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_BROKER_DOWN, EXIT_DATABASE_DOWN, EXIT_ATTENTION = 0, 1, 2, 3, 4, 5

ROLES = ("front_desk", "clinician", "billing", "admin")


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
            url = database_url(config, name)
            with migration_lock(url, name):
                upgrade(name, url)
            print(f"migrated {name}", flush=True)


def migration_lock_key(service_name: str) -> int:
    digest = hashlib.sha256(f"clinic-migrate:{service_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def migration_lock(url: str, service_name: str):
    """Replicas started together (``--scale billing=3``) each run
    ``clinic run``, so each migrates: on PostgreSQL an advisory lock lets
    one apply the revisions while the others wait and then find nothing to
    do. SQLite has one process per file and needs no lock."""
    if not url.startswith("postgresql"):
        yield
        return
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            key = migration_lock_key(service_name)
            connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": key})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.commit()
    finally:
        engine.dispose()


def migrate_or_explain(config: dict, names: list[str]) -> int:
    from sqlalchemy.exc import OperationalError

    try:
        migrate(config, names)
    except OperationalError as exc:
        reason = (str(exc.orig).strip().splitlines() or [""])[0]
        print(f"a database is not reachable, nothing started: {type(exc.orig).__name__}: {reason}",
              file=sys.stderr)
        return EXIT_DATABASE_DOWN
    return EXIT_OK


def services_with_databases(asked: list[str]) -> list[str] | None:
    """The services named (all that have a database when none are), or None
    after saying which names are unknown."""
    names = asked or [n for n in available_services() if has_database(n)]
    unknown = [n for n in names if n not in SERVICES or not has_database(n)]
    if unknown:
        print(f"unknown service(s): {', '.join(unknown)}", file=sys.stderr)
        return None
    return names


def cmd_migrate(args) -> int:
    config = load_config()
    names = services_with_databases(args.services)
    if names is None:
        return EXIT_USAGE
    return migrate_or_explain(config, names)


def service_port(name: str) -> int:
    """The service's HTTP port: CLINIC_PORTS ("gateway=8000,intake=8001,…")
    overrides the defaults, so a second clinic (the demo) can run beside one."""
    overrides = dict(part.split("=", 1) for part in os.environ.get("CLINIC_PORTS", "").split(",") if "=" in part)
    return int(overrides.get(name, SERVICES[name][1]))


def service_env(name: str) -> dict:
    env = dict(os.environ)
    env.setdefault("WEB_SERVER_ADDRESS", f"{os.environ.get('CLINIC_BIND', '127.0.0.1')}:{service_port(name)}")
    # Names the process in every JSON log line, even outside a worker.
    env["CLINIC_SERVICE"] = name
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
        code = migrate_or_explain(config, [target])
        if code != EXIT_OK:
            return code
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
    code = migrate_or_explain(config, [n for n in names if has_database(n)])
    if code != EXIT_OK:
        return code
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


# ------------------------------------------------------------------ queues

def management_url(amqp_uri: str) -> str:
    configured = os.environ.get("RABBITMQ_MANAGEMENT_URL")
    if configured:
        return configured.rstrip("/")
    host = urlsplit(amqp_uri).hostname or "127.0.0.1"
    return f"http://{host}:15672"


def queue_stats_from_management(amqp_uri: str, url: str) -> list[dict]:
    """Every queue of the vhost, from the management plugin's HTTP API."""
    import httpx
    from kombu import Connection

    connection = Connection(amqp_uri)
    vhost = connection.virtual_host or "/"
    answer = httpx.get(
        f"{url}/api/queues/{quote(vhost, safe='')}",
        params={"columns": "name,messages_ready,messages_unacknowledged,consumers"},
        auth=(connection.userid, connection.password), timeout=5,
    )
    answer.raise_for_status()
    return [
        {"queue": q["name"], "ready": q.get("messages_ready", 0) or 0,
         "unacked": q.get("messages_unacknowledged", 0) or 0, "consumers": q.get("consumers", 0) or 0}
        for q in answer.json()
    ]


def known_queue_names() -> list[str]:
    """The queues this checkout's services consume from, derived from their
    entrypoints the way nameko names them, plus the dead-letter queue."""
    from nameko.events import SERVICE_POOL, EventHandler
    from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
    from nameko.rpc import Rpc

    from common.deadletters import DEAD_LETTER_QUEUE

    names = []
    for service in available_services():
        module, class_name = SERVICES[service][0].split(":")
        cls = getattr(importlib.import_module(module), class_name)
        for attr in dir(cls):
            for entrypoint in getattr(getattr(cls, attr, None), ENTRYPOINT_EXTENSIONS_ATTR, ()):
                if isinstance(entrypoint, Rpc):
                    names.append(f"rpc-{service}")
                elif isinstance(entrypoint, EventHandler) and entrypoint.handler_type == SERVICE_POOL:
                    names.append(f"evt-{entrypoint.source_service}-{entrypoint.event_type}--{service}.{attr}")
    return sorted(set(names)) + [DEAD_LETTER_QUEUE]


def queue_stats_from_amqp(amqp_uri: str, names: list[str]) -> list[dict]:
    """Passive declares: the fallback when the management API is not
    reachable; sees only the queues named, and no unacked count."""
    from amqp.exceptions import NotFound as QueueNotFound
    from kombu import Connection

    stats = []
    with Connection(amqp_uri, connect_timeout=5) as connection:
        for name in names:
            channel = connection.channel()  # a missing queue closes its channel
            try:
                _, ready, consumers = channel.queue_declare(name, passive=True)
                stats.append({"queue": name, "ready": ready, "unacked": None, "consumers": consumers})
            except QueueNotFound:
                stats.append({"queue": name, "ready": None, "unacked": None, "consumers": None})
            finally:
                try:
                    channel.close()
                except Exception:
                    pass
    return stats


def queue_warning(row: dict) -> str:
    from common.deadletters import DEAD_LETTER_QUEUE, DISCARDED_QUEUE
    from common.handlers import RETRY_QUEUE_PREFIX

    if row["queue"] == DEAD_LETTER_QUEUE:
        return "dead letters waiting: clinic dead-letters list" if row["ready"] else ""
    if row["queue"] == DISCARDED_QUEUE:
        return ""  # the audit record of discarded letters: nobody consumes it
    if row["queue"].startswith(RETRY_QUEUE_PREFIX):
        # Delay queues have no consumer by design: the broker moves their messages on.
        return "events waiting for a retry" if row["ready"] else ""
    if row["ready"] is None:
        return "missing (its service has not started on this broker)"
    if row["ready"] and not row["consumers"]:
        return "messages but no consumer"
    return ""


def cmd_queues(args) -> int:
    config = load_config()
    uri = config["AMQP_URI"]
    if not check_broker(config):
        return EXIT_BROKER_DOWN
    source = "management API"
    try:
        rows = queue_stats_from_management(uri, args.management_url or management_url(uri))
    except Exception:
        source = "AMQP (management API unreachable: known queues only, no unacked counts)"
        rows = queue_stats_from_amqp(uri, known_queue_names())
    rows.sort(key=lambda row: row["queue"])
    if args.json:
        print(json.dumps({"source": source, "queues": rows}, indent=2))
        return EXIT_OK
    print(f"queues on {redact(uri)} (from {source})")
    print_table(
        ["queue", "ready", "unacked", "consumers", ""],
        [[r["queue"], _cell(r["ready"]), _cell(r["unacked"]), _cell(r["consumers"]), queue_warning(r)]
         for r in rows],
    )
    return EXIT_OK


def _cell(value) -> str:
    return "-" if value is None else str(value)


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    for row in [headers, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())


# ------------------------------------------------------------------ outbox

def outbox_state(url: str) -> dict:
    """Unpublished events in one service database. Rows with attempts have
    failed to publish at least once; their last error says why."""
    import sqlalchemy as sa

    from common.outbox import outbox
    from common.service import outbox_age_seconds

    connect_args = {"connect_timeout": 5} if url.startswith("postgresql") else {}
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=connect_args)
    try:
        with engine.connect() as connection:
            if not sa.inspect(connection).has_table("outbox"):
                return {"status": "not migrated"}
            pending = outbox.c.sent_at.is_(None)
            count, oldest, failing = connection.execute(
                sa.select(sa.func.count(), sa.func.min(outbox.c.created_at),
                          sa.func.count().filter(outbox.c.attempts > 0)).where(pending)
            ).one()
            last_error = connection.execute(
                sa.select(outbox.c.last_error).where(pending, outbox.c.last_error.is_not(None))
                .order_by(outbox.c.id.desc()).limit(1)
            ).scalar()
            return {"status": "ok", "pending": count, "oldest_seconds": round(outbox_age_seconds(oldest), 1),
                    "failed_attempts": failing, "last_error": last_error}
    finally:
        engine.dispose()


def cmd_outbox(args) -> int:
    from sqlalchemy.exc import OperationalError

    config = load_config()
    names = services_with_databases(args.services)
    if names is None:
        return EXIT_USAGE
    states, code = {}, EXIT_OK
    for name in names:
        try:
            states[name] = outbox_state(database_url(config, name))
        except OperationalError as exc:
            states[name] = {"status": f"unreachable ({type(exc.orig).__name__})"}
            code = EXIT_DATABASE_DOWN
    stale = [name for name, state in states.items()
             if args.max_age is not None and state.get("oldest_seconds", 0) > args.max_age]
    if stale and code == EXIT_OK:
        code = EXIT_ATTENTION
    if args.json:
        print(json.dumps(states, indent=2))
        return code
    print_table(
        ["service", "pending", "oldest (s)", "failed attempts", "status / last error"],
        [[name, _cell(state.get("pending")), _cell(state.get("oldest_seconds")),
          _cell(state.get("failed_attempts")), state.get("last_error") or state["status"]]
         for name, state in states.items()],
    )
    if stale:
        print(f"older than {args.max_age}s: {', '.join(stale)} (is its relay running? is the broker up?)",
              file=sys.stderr)
    return code


# ------------------------------------------------------------ dead letters

def cmd_dead_letters_list(args) -> int:
    from common.deadletters import list_dead_letters, listing_rows

    config = load_config()
    if not check_broker(config):
        return EXIT_BROKER_DOWN
    letters = list_dead_letters(config["AMQP_URI"], limit=args.limit, discarded=args.discarded)
    if args.handler:
        letters = [letter for letter in letters if letter.get("handler") == args.handler]
    if args.json:
        print(json.dumps(letters, indent=2))  # ids and reasons; bodies stay in the queue
    elif not letters:
        print("no discarded dead letters" if args.discarded else "no dead letters")
    else:
        print_table(*listing_rows(letters))
        if len(letters) == args.limit:
            print(f"(first {args.limit} shown; --limit to see more)")
    return EXIT_ATTENTION if letters and args.fail_if_any else EXIT_OK


def cmd_dead_letters_replay(args) -> int:
    from common.deadletters import replay_dead_letters

    if not (args.all or args.handler or args.event_id or args.letter_id):
        print("say which dead letters to replay: --letter-id ID, --event-id ID, --handler SERVICE.METHOD or --all",
              file=sys.stderr)
        return EXIT_USAGE
    config = load_config()
    if not check_broker(config):
        return EXIT_BROKER_DOWN
    result = replay_dead_letters(config["AMQP_URI"], only_handler=args.handler,
                                 only_event_id=args.event_id, only_letter_id=args.letter_id, limit=args.limit)
    print(f"replayed {result.replayed} dead letter(s)")
    if result.orphaned:
        print(f"kept {len(result.orphaned)} whose handler queue does not exist: "
              f"{', '.join(sorted(set(result.orphaned)))} (start that service, then replay again)",
              file=sys.stderr)
        return EXIT_ATTENTION
    if not result.replayed and (args.event_id or args.handler or args.letter_id):
        print("no dead letter matched", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def cmd_dead_letters_discard(args) -> int:
    from common.deadletters import discard_dead_letters

    if not (args.actor.strip() and args.reason.strip()):
        print("--actor and --reason must say who discards and why", file=sys.stderr)
        return EXIT_USAGE
    config = load_config()
    if not check_broker(config):
        return EXIT_BROKER_DOWN
    discarded = discard_dead_letters(config["AMQP_URI"], actor=args.actor, reason=args.reason,
                                     only_letter_id=args.letter_id, only_event_id=args.event_id,
                                     only_handler=args.handler, queue_type_config=config)
    print(f"discarded {len(discarded)} dead letter(s): {', '.join(discarded) or '-'}")
    if not discarded:
        print("no dead letter matched", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


# ------------------------------------------------------------------- token

def cmd_token(args) -> int:
    if args.role not in ROLES:
        print(f"unknown role {args.role!r}; choose from {', '.join(ROLES)}", file=sys.stderr)
        return EXIT_USAGE
    if not args.user or any(ch in args.user for ch in ":, \t"):
        print("--user must be a name without ':', ',' or spaces", file=sys.stderr)
        return EXIT_USAGE
    token = secrets.token_urlsafe(32)
    print(f"token: {token}")
    print("add this entry to GATEWAY_TOKENS (comma separated) and restart the gateway:")
    print(f"{token}:{args.role}:{args.user}")
    return EXIT_OK


# ------------------------------------------------------------------ health

def probe_url(address: str | None, live: bool) -> str:
    address = address or os.environ.get("WEB_SERVER_ADDRESS", "127.0.0.1:8000")
    host, _, port = address.rpartition(":")
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    return f"http://{host}:{port}/{'health' if live else 'ready'}"


def cmd_health(args) -> int:
    import urllib.error
    import urllib.request

    url = probe_url(args.address, args.live)
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as answer:
            print(answer.read().decode()[:500])
            return EXIT_OK
    except urllib.error.HTTPError as exc:
        print(exc.read().decode()[:500], file=sys.stderr)
    except OSError as exc:
        print(f"{url}: {exc}", file=sys.stderr)
    return EXIT_FAILURE


# ------------------------------------------------------------------ parser

EPILOG = """exit codes:
  0  done
  1  failed (a health probe failed, a replay matched nothing)
  2  bad usage
  3  RabbitMQ unreachable (AMQP_URI)
  4  a database unreachable (DATABASE_URLS / <SERVICE>_DATABASE_URL)
  5  done, but an operator should look (old outbox backlog, dead letters)

Configuration comes from config.yaml (CLINIC_CONFIG) and the environment
variables it names, exactly as the services read it."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clinic", description="Run and operate the clinic services.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="migrate and run services",
                              description="Apply the service's migrations, then run it in the foreground.")
    run.add_argument("service", help=f"all, or one of: {', '.join(SERVICES)}")
    run.set_defaults(func=cmd_run)

    mig = commands.add_parser("migrate", help="apply database migrations")
    mig.add_argument("services", nargs="*", help="services to migrate (default: all)")
    mig.set_defaults(func=cmd_migrate)

    queues = commands.add_parser(
        "queues", help="queue depths and consumer counts",
        description="Every queue's ready and unacknowledged messages and its consumers, from the "
                    "RabbitMQ management API (RABBITMQ_MANAGEMENT_URL, default http://<AMQP host>:15672), "
                    "or by passive declares of the services' own queues when it is unreachable.")
    queues.add_argument("--management-url", help="e.g. http://rabbitmq:15672")
    queues.add_argument("--json", action="store_true", help="machine-readable output")
    queues.set_defaults(func=cmd_queues)

    box = commands.add_parser(
        "outbox", help="events committed but not yet published",
        description="Per service database: outbox rows not yet published, the age of the oldest, "
                    "how many failed to publish and the last error.")
    box.add_argument("services", nargs="*", help="services to check (default: all)")
    box.add_argument("--max-age", type=float, metavar="SECONDS",
                     help="exit 5 when an unpublished event is older than this")
    box.add_argument("--json", action="store_true", help="machine-readable output")
    box.set_defaults(func=cmd_outbox)

    dead = commands.add_parser("dead-letters", help="list, replay or discard dead letters",
                               description="Messages that could not be applied: rejected as bad, undecodable, "
                                           "failed EVENT_MAX_ATTEMPTS times or through a whole "
                                           "EVENT_OUTAGE_WINDOW, or past a quorum queue's delivery limit.")
    dead_commands = dead.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = dead_commands.add_parser("list", help="show dead letters, oldest first, without removing them")
    listing.add_argument("--handler", help="only this handler, e.g. billing.on_session_completed")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    listing.add_argument("--json", action="store_true", help="machine-readable (ids and reasons, no bodies)")
    listing.add_argument("--fail-if-any", action="store_true", help="exit 5 when there is any (for monitoring)")
    listing.add_argument("--discarded", action="store_true",
                         help="the discarded letters instead, with who discarded them, when and why")
    listing.set_defaults(func=cmd_dead_letters_list)
    replay = dead_commands.add_parser(
        "replay", help="send dead letters back to the handler that failed",
        description="Fix the cause first. Handlers apply each event once, so replaying is safe.")
    which = replay.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="every dead letter")
    which.add_argument("--handler", help="every dead letter of this handler, e.g. billing.on_session_completed")
    which.add_argument("--event-id", help="the dead letter of this one event")
    which.add_argument("--letter-id", help="this one dead letter (its id in the listing)")
    replay.add_argument("--limit", type=int, help="at most this many")
    replay.set_defaults(func=cmd_dead_letters_replay)
    discard = dead_commands.add_parser(
        "discard", help="give up on dead letters for good, with who and why",
        description="Moves the letters to clinic.dead-letters.discarded with who discarded them, when "
                    "and why (list --discarded shows them); a line with their ids is logged.")
    chosen = discard.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--letter-id", help="this one dead letter (its id in the listing)")
    chosen.add_argument("--event-id", help="the dead letter(s) of this one event")
    chosen.add_argument("--handler", help="every dead letter of this handler")
    discard.add_argument("--actor", required=True, help="who discards them, as audit records name people")
    discard.add_argument("--reason", required=True, help="why they can never be applied")
    discard.set_defaults(func=cmd_dead_letters_discard)

    token = commands.add_parser("token", help="create a gateway API token",
                                description="Print a new random bearer token and the GATEWAY_TOKENS entry "
                                            "that grants it; nothing is stored.")
    token.add_argument("--role", required=True, help=f"one of: {', '.join(ROLES)}")
    token.add_argument("--user", required=True, help="who the token is for, as audit records name them")
    token.set_defaults(func=cmd_token)

    health = commands.add_parser("health", help="probe this process's /ready (or /health with --live)",
                                 description="Exit 0 when the service answers 200: the container health check.")
    health.add_argument("--live", action="store_true", help="liveness (/health) instead of readiness (/ready)")
    health.add_argument("--address", help="HOST:PORT (default: WEB_SERVER_ADDRESS)")
    health.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")
    health.set_defaults(func=cmd_health)
    return parser


def main(argv: list[str] | None = None) -> int:
    # eventlet announces its deprecation on import: noise in an operator's terminal.
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or bad usage (2), as an exit code
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

"""``clinic outbox``: events committed but not yet published, per service
database."""
from __future__ import annotations

import json
import sys

from cli.console import EXIT_ATTENTION, EXIT_DATABASE_DOWN, EXIT_OK, EXIT_USAGE, cell, print_table
from cli.services import services_with_databases
from common.config import database_url, load_config


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
        [[name, cell(state.get("pending")), cell(state.get("oldest_seconds")),
          cell(state.get("failed_attempts")), state.get("last_error") or state["status"]]
         for name, state in states.items()],
    )
    if stale:
        print(f"older than {args.max_age}s: {', '.join(stale)} (is its relay running? is the broker up?)",
              file=sys.stderr)
    return code


def add_parser(commands) -> None:
    box = commands.add_parser(
        "outbox", help="events committed but not yet published",
        description="Per service database: outbox rows not yet published, the age of the oldest, "
                    "how many failed to publish and the last error.")
    box.add_argument("services", nargs="*", help="services to check (default: all)")
    box.add_argument("--max-age", type=float, metavar="SECONDS",
                     help="exit 5 when an unpublished event is older than this")
    box.add_argument("--json", action="store_true", help="machine-readable output")
    box.set_defaults(func=cmd_outbox)

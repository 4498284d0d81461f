"""``clinic migrate``: each service's alembic migrations, serialised between
replicas by a PostgreSQL advisory lock."""
from __future__ import annotations

import hashlib
import sys
from contextlib import contextmanager
from typing import Callable

from cli.console import EXIT_DATABASE_DOWN, EXIT_OK, EXIT_USAGE
from cli.services import has_database, services_with_databases
from common.config import database_url, load_config


def migrate(config: dict, names: list[str], report: Callable[[str], None] = print) -> None:
    from common.migrations import upgrade

    for name in names:
        if has_database(name):
            url = database_url(config, name)
            with migration_lock(url, name):
                upgrade(name, url)
            report(f"migrated {name}")


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


def database_unreachable_message(exc) -> str:
    reason = (str(exc.orig).strip().splitlines() or [""])[0]
    return f"a database is not reachable, nothing started: {type(exc.orig).__name__}: {reason}"


def migrate_or_explain(config: dict, names: list[str], report: Callable[[str], None] = print,
                       complain: Callable[[str], None] | None = None) -> int:
    from sqlalchemy.exc import OperationalError

    try:
        migrate(config, names, report)
    except OperationalError as exc:
        (complain or (lambda text: print(text, file=sys.stderr)))(database_unreachable_message(exc))
        return EXIT_DATABASE_DOWN
    return EXIT_OK


def cmd_migrate(args) -> int:
    config = load_config()
    names = services_with_databases(args.services)
    if names is None:
        return EXIT_USAGE
    return migrate_or_explain(config, names)


def add_parser(commands) -> None:
    mig = commands.add_parser("migrate", help="apply database migrations")
    mig.add_argument("services", nargs="*", help="services to migrate (default: all)")
    mig.set_defaults(func=cmd_migrate)

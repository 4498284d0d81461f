"""Alembic, one history per service, driven from code: ``clinic migrate``
and the service runner call ``upgrade`` before a service takes traffic."""
from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config as AlembicConfig

from common.config import PROJECT_ROOT, driver_url
from common.outbox import plumbing_metadata

SERVICES_DIR = PROJECT_ROOT / "services"


def alembic_config(service_name: str, url: str) -> AlembicConfig:
    script_location = SERVICES_DIR / service_name / "migrations"
    if not script_location.is_dir():
        raise KeyError(f"no migrations for service {service_name!r}")
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("sqlalchemy.url", driver_url(url).replace("%", "%%"))
    return cfg


def upgrade(service_name: str, url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(service_name, url), revision)


def current_revision(url: str) -> str | None:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            from alembic.runtime.migration import MigrationContext

            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def run_env(service_metadata: sa.MetaData) -> None:
    """The body of every service's ``migrations/env.py``."""
    url = context.config.get_main_option("sqlalchemy.url")
    metadata = [service_metadata, plumbing_metadata]
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


def create_plumbing_tables(op) -> None:
    """Called from each service's first migration: the outbox and the
    processed-events ledger have the same shape everywhere.

    It builds from the live ``plumbing_metadata``, so those two tables must
    never change shape in place: a change gets its own migration in every
    service (and a new shared table is created by a new migration, not by
    adding it to this metadata)."""
    bind = op.get_bind()
    for table in plumbing_metadata.sorted_tables:
        table.create(bind)


def create_idempotency_table(op) -> None:
    """The shared ``idempotency_keys`` table (see ``common.idempotency``),
    spelled out here rather than built from the live table so that this
    migration keeps creating the shape it was written for."""
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("operation", sa.String(60), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("answer", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", "operation", "key"),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def drop_idempotency_table(op) -> None:
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")


def drop_plumbing_tables(op) -> None:
    bind = op.get_bind()
    for table in reversed(plumbing_metadata.sorted_tables):
        table.drop(bind)


def migrations_dir(service_name: str) -> Path:
    return SERVICES_DIR / service_name / "migrations"

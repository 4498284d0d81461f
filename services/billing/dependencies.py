"""Billing's seams to configuration: its settings, the fee schedule file
loaded at start, and a timer whose interval comes from the BILLING section."""
from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
import yaml
from nameko.extensions import DependencyProvider
from sqlalchemy.dialects import postgresql, sqlite

from common.config import database_url
from common.service import ConfiguredTimer
from services.billing import domain
from services.billing.models import FeePrice

log = logging.getLogger(__name__)

DEFAULT_FEE_SCHEDULE = Path(__file__).resolve().parent / "fee_schedule.yaml"


def billing_section(config: dict) -> dict:
    return dict(config.get("BILLING") or {})


class Settings:
    def __init__(self, section: dict):
        self.rules = domain.BillingRules.from_config(section)
        self.clinic = domain.clinic_from_config(section)


class BillingSettings(DependencyProvider):
    """The clinic's details and billing rules, read once at start."""

    def setup(self):
        self.settings = Settings(billing_section(self.container.config))

    def get_dependency(self, worker_ctx):
        return self.settings


def insert_ignoring_duplicates(dialect_name: str, table):
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    return insert(table)


def load_fee_schedule(engine: sa.Engine, rows: list[dict]) -> int:
    """Add the prices not yet stored; never change a stored one, since
    charges may already have been priced from it. Safe when several
    replicas start at once (the unique key decides)."""
    table = FeePrice.__table__
    added = 0
    with engine.begin() as connection:
        for row in rows:
            statement = insert_ignoring_duplicates(engine.dialect.name, table).values(**row)
            result = connection.execute(statement.on_conflict_do_nothing(index_elements=["code", "effective_from"]))
            added += result.rowcount or 0
            stored = connection.execute(
                sa.select(table.c.price_cents, table.c.currency)
                .where(table.c.code == row["code"], table.c.effective_from == row["effective_from"])
            ).one()
            if (stored.price_cents, stored.currency) != (row["price_cents"], row["currency"]):
                log.warning("fee schedule file disagrees with the stored price of %s from %s; the stored price stays"
                            " (add a new effective date to change a price)", row["code"], row["effective_from"])
    return added


class FeeScheduleLoader(DependencyProvider):
    """Loads the fee schedule file into the database when the service
    starts; ``BILLING.FEE_SCHEDULE_PATH`` points at another file."""

    def setup(self):
        section = billing_section(self.container.config)
        path = Path(section.get("FEE_SCHEDULE_PATH") or DEFAULT_FEE_SCHEDULE)
        with open(path) as stream:
            self.rows = domain.validate_fee_schedule(yaml.safe_load(stream))
        currency = domain.BillingRules.from_config(section).currency
        if any(row["currency"] != currency for row in self.rows):
            raise ValueError(f"the fee schedule {path.name} is not in the clinic's currency {currency}")

    def start(self):
        # Resolved at start, not setup: extensions are set up concurrently.
        url = database_url(self.container.config, self.container.service_name)
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            added = load_fee_schedule(engine, self.rows)
        finally:
            engine.dispose()
        if added:
            log.info("fee schedule: %d new price(s) loaded", added)


class BillingTimer(ConfiguredTimer):
    """A timer whose interval is ``BILLING.<config_key>`` (seconds)."""

    def setup(self):
        seconds = billing_section(self.container.config).get(self.config_key)
        if seconds:
            self.interval = float(seconds)


billing_timer = BillingTimer.decorator

"""Billing's seams to configuration: its settings (the BILLING section) and
the fee schedule file loaded at start."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
import yaml
from nameko.extensions import DependencyProvider

from common.config import database_url, section
from common.database import insert_ignoring_duplicates
from services.billing import domain
from services.billing.models import FeePrice

log = logging.getLogger(__name__)

DEFAULT_FEE_SCHEDULE = Path(__file__).resolve().parent / "fee_schedule.yaml"


@dataclass(frozen=True)
class Settings:
    """The clinic's details and billing rules, read from the BILLING section
    once at start (``ConfigSection("BILLING", Settings.from_config)``)."""

    rules: domain.BillingRules
    clinic: domain.Clinic

    @classmethod
    def from_config(cls, section: dict) -> "Settings":
        return cls(rules=domain.BillingRules.from_config(section), clinic=domain.clinic_from_config(section))


def load_fee_schedule(engine: sa.Engine, rows: list[dict]) -> int:
    """Add the prices not yet stored; never change a stored one, since
    charges may already have been priced from it. Safe when several
    replicas start at once (the unique key decides)."""
    table = FeePrice.__table__
    added = 0
    with engine.begin() as connection:
        for row in rows:
            added += insert_ignoring_duplicates(connection, table, row, unique=("code", "effective_from"))
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
        billing = section(self.container.config, "BILLING")
        path = Path(billing.get("FEE_SCHEDULE_PATH") or DEFAULT_FEE_SCHEDULE)
        with open(path) as stream:
            self.rows = domain.validate_fee_schedule(yaml.safe_load(stream))
        currency = domain.BillingRules.from_config(billing).currency
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

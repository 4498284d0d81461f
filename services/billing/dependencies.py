"""Billing's seams to configuration: its settings (the BILLING section) and
the fee schedule file loaded at start."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import sqlalchemy as sa
import yaml
from nameko.extensions import DependencyProvider

from common.config import database_url, section
from common import outbox
from common.database import insert_ignoring_duplicates
from common.events import envelope
from services.billing import domain, events
from services.billing.models import FeePrice

log = logging.getLogger(__name__)

DEFAULT_FEE_SCHEDULE = Path(__file__).resolve().parent / "fee_schedule.yaml"
# Prices are only ever added, and only by a replica starting with a new
# file, which announces them (``fee_schedule.changed``): every replica then
# drops its copy. Read again after this long all the same, in case a
# replica missed the announcement (it was cut off from the broker).
DEFAULT_FEE_SCHEDULE_REFRESH_SECONDS = 3600.0


@dataclass(frozen=True)
class Settings:
    """The clinic's details and billing rules, read from the BILLING section
    once at start (``ConfigSection("BILLING", Settings.from_config)``)."""

    rules: domain.BillingRules
    clinic: domain.Clinic

    @classmethod
    def from_config(cls, section: dict) -> "Settings":
        return cls(rules=domain.BillingRules.from_config(section), clinic=domain.clinic_from_config(section))


def load_fee_schedule(engine: sa.Engine, rows: list[dict], announce=None) -> int:
    """Add the prices not yet stored; never change a stored one, since
    charges may already have been priced from it. Safe when several
    replicas start at once (the unique key decides). ``announce(connection,
    codes, added)`` is called in the same transaction when prices were
    added (to put ``fee_schedule.changed`` in the outbox)."""
    table = FeePrice.__table__
    added, codes = 0, set()
    with engine.begin() as connection:
        for row in rows:
            if insert_ignoring_duplicates(connection, table, row, unique=("code", "effective_from")):
                added += 1
                codes.add(row["code"])
            stored = connection.execute(
                sa.select(table.c.price_cents, table.c.currency)
                .where(table.c.code == row["code"], table.c.effective_from == row["effective_from"])
            ).one()
            if (stored.price_cents, stored.currency) != (row["price_cents"], row["currency"]):
                log.warning("fee schedule file disagrees with the stored price of %s from %s; the stored price stays"
                            " (add a new effective date to change a price)", row["code"], row["effective_from"])
        if added and announce is not None:
            announce(connection, sorted(codes), added)
    return added


def announce_change(connection, codes: list[str], added: int) -> None:
    """``fee_schedule.changed`` into the outbox, for the relay to publish:
    the other billing processes drop the prices they keep."""
    facts = events.FeeScheduleChanged(codes=codes, prices_added=added)
    outbox.add_event(connection, envelope(facts.type, facts.facts(), producer=facts.producer,
                                          version=facts.version), claimed=False)


@dataclass(frozen=True)
class StoredPrice:
    """One row of ``fee_prices``, kept outside any database session."""

    code: str
    kind: str
    description: str
    unit: str
    price_cents: int
    currency: str
    effective_from: date
    package_route: str | None
    package_sessions: int | None


class FeeSchedule:
    """The stored prices, read whole from the database once and kept by the
    service process: pricing a charge costs no round trip. Read again on
    next use once ``fee_schedule.changed`` arrives (``invalidate``), and
    after ``refresh_seconds`` whatever happens."""

    def __init__(self, refresh_seconds: float = DEFAULT_FEE_SCHEDULE_REFRESH_SECONDS):
        self.refresh_seconds = refresh_seconds
        self._by_code: dict[str, list[StoredPrice]] | None = None
        self._read_at = 0.0

    def prices(self, session, code: str) -> list[StoredPrice]:
        if self._by_code is None or time.monotonic() - self._read_at >= self.refresh_seconds:
            self._by_code = self._read(session)
            self._read_at = time.monotonic()
        return self._by_code.get(code, [])

    def invalidate(self) -> None:
        self._by_code = None

    @staticmethod
    def _read(session) -> dict[str, list[StoredPrice]]:
        table = FeePrice.__table__
        by_code: dict[str, list[StoredPrice]] = {}
        for row in session.execute(sa.select(*(table.c[name] for name in StoredPrice.__dataclass_fields__))):
            by_code.setdefault(row.code, []).append(StoredPrice(**row._mapping))
        return by_code


class FeeScheduleLoader(DependencyProvider):
    """Loads the fee schedule file into the database when the service
    starts (``BILLING.FEE_SCHEDULE_PATH`` points at another file); in a
    worker it is the process's ``FeeSchedule``."""

    def setup(self):
        billing = section(self.container.config, "BILLING")
        path = Path(billing.get("FEE_SCHEDULE_PATH") or DEFAULT_FEE_SCHEDULE)
        with open(path) as stream:
            self.rows = domain.validate_fee_schedule(yaml.safe_load(stream))
        currency = domain.BillingRules.from_config(billing).currency
        if any(row["currency"] != currency for row in self.rows):
            raise ValueError(f"the fee schedule {path.name} is not in the clinic's currency {currency}")
        self.schedule = FeeSchedule(float(billing.get("FEE_SCHEDULE_REFRESH_SECONDS")
                                          or DEFAULT_FEE_SCHEDULE_REFRESH_SECONDS))

    def start(self):
        # Resolved at start, not setup: extensions are set up concurrently.
        url = database_url(self.container.config, self.container.service_name)
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            added = load_fee_schedule(engine, self.rows, announce=announce_change)
        finally:
            engine.dispose()
        if added:
            self.schedule.invalidate()
            log.info("fee schedule: %d new price(s) loaded", added)

    def get_dependency(self, worker_ctx):
        return self.schedule

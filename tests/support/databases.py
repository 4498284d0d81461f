"""Throwaway PostgreSQL databases for the tests: one per service, created
and migrated on first use, emptied after each test, dropped at the end."""
from __future__ import annotations

import os
import threading
import uuid

import sqlalchemy as sa

from common.config import driver_url
from common.migrations import upgrade

POSTGRES_ADMIN_URL = driver_url(os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))


class TestDatabases(dict):
    """Behaves as the ``DATABASE_URLS`` config mapping; a service's database
    is created (and migrated) the first time it is asked for."""

    def __init__(self):
        super().__init__()
        self.run_id = uuid.uuid4().hex[:8]
        self.admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        self.engines: dict[str, sa.Engine] = {}
        # Green under eventlet: two extensions of a starting container may ask
        # for the same database at once.
        self.creating = threading.Lock()

    def __missing__(self, service_name: str) -> str:
        with self.creating:
            if dict.__contains__(self, service_name):
                return dict.__getitem__(self, service_name)
            return self._create(service_name)

    def _create(self, service_name: str) -> str:
        name = f"clinic_test_{service_name}_{self.run_id}"
        with self.admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
        upgrade(service_name, url)
        self[service_name] = url
        self.engines[service_name] = sa.create_engine(url, poolclass=sa.pool.NullPool)
        return url

    def get(self, service_name, default=None):
        return self[service_name]

    def engine(self, service_name: str) -> sa.Engine:
        self[service_name]
        return self.engines[service_name]

    def empty_all(self) -> None:
        for engine in self.engines.values():
            tables = [t for t in sa.inspect(engine).get_table_names() if t != "alembic_version"]
            if tables:
                with engine.begin() as connection:
                    connection.execute(sa.text(
                        "TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))

    def drop_all(self) -> None:
        for engine in self.engines.values():
            engine.dispose()
        with self.admin.connect() as connection:
            for service_name in list(self):
                name = f"clinic_test_{service_name}_{self.run_id}"
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()

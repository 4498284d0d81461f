"""Each service's alembic history builds exactly the tables its models
describe, on PostgreSQL: a model change without its migration fails here."""
import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from common.outbox import plumbing_metadata


@pytest.mark.parametrize("service", ["intake", "sessions", "billing", "notifications"])
def test_no_drift_between_migrations_and_models(databases, service):
    models = importlib.import_module(f"services.{service}.models")
    with databases.engine(service).connect() as connection:
        drift = compare_metadata(MigrationContext.configure(connection), [models.Base.metadata, plumbing_metadata])
    assert drift == []

"""Migration 0006 on a database holding PHQ-9 scores from before it, on
PostgreSQL and on the SQLite file bin/run-clinic uses: every existing score
stays, as a PHQ-9 taken by staff, and the way back keeps the PHQ-9s."""
import uuid

import pytest
import sqlalchemy as sa
from alembic import command

from common.migrations import alembic_config, upgrade
from tests.support.databases import POSTGRES_ADMIN_URL

BEFORE = "0005_front_desk_tasks"


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'sessions.db'}"
        return
    name = f"clinic_test_sessions_migration_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def rows(engine, statement):
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(sa.text(statement))]


def test_existing_scores_become_staff_phq9s_and_come_back(database_url):
    upgrade("sessions", database_url, BEFORE)
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO treatment_plans (plan_id, patient_id, route, drug, indication, max_dose_mg, "
            "induction_sessions, min_hours_apart, status, created_by, created_at, updated_at) VALUES "
            "('plan-1', 'patient-1', 'iv_infusion', 'ketamine', 'trd', 60, 6, 48, 'active', 'dr', "
            ":at, :at)"), {"at": "2026-03-01 10:00:00+00:00"})
        for total in (20, 12):
            connection.execute(sa.text("INSERT INTO phq9_scores (plan_id, total, recorded_at) "
                                       "VALUES ('plan-1', :total, :at)"),
                               {"total": total, "at": "2026-03-02 10:00:00+00:00"})

    upgrade("sessions", database_url)
    assert rows(engine, "SELECT total, instrument, source FROM outcome_scores ORDER BY id") == [
        (20, "phq9", "staff"), (12, "phq9", "staff")]
    assert "ix_outcome_scores_plan_id" in {i["name"] for i in sa.inspect(engine).get_indexes("outcome_scores")}
    with engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO outcome_scores (plan_id, instrument, source, total, recorded_at) "
                                   "VALUES ('plan-1', 'gad7', 'self_report', 9, :at)"),
                           {"at": "2026-03-03 10:00:00+00:00"})

    command.downgrade(alembic_config("sessions", database_url), BEFORE)
    assert rows(engine, "SELECT total FROM phq9_scores ORDER BY id") == [(20,), (12,)]
    engine.dispose()

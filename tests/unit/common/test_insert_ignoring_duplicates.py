"""One INSERT … ON CONFLICT DO NOTHING for every service, on both databases
the clinic runs on, through a Session or a Connection."""
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from common.database import insert_ignoring_duplicates
from tests.support.databases import POSTGRES_ADMIN_URL

metadata = sa.MetaData()
counters = sa.Table(
    "counters", metadata,
    sa.Column("clinic_id", sa.String(20), nullable=False),
    sa.Column("year", sa.Integer, nullable=False),
    sa.Column("last_number", sa.Integer, nullable=False),
    sa.UniqueConstraint("clinic_id", "year"),
    prefixes=["TEMPORARY"],
)


@pytest.fixture(params=["sqlite", "postgresql"])
def connection(request):
    engine = sa.create_engine("sqlite://" if request.param == "sqlite" else POSTGRES_ADMIN_URL,
                              poolclass=sa.pool.NullPool)
    # A temporary table inside a transaction that is rolled back: nothing
    # is left behind in the shared server.
    with engine.connect() as connection, connection.begin() as transaction:
        metadata.create_all(connection)
        yield connection
        transaction.rollback()
    engine.dispose()


def stored(connection):
    return connection.execute(sa.select(counters.c.clinic_id, counters.c.year, counters.c.last_number)
                              .order_by(counters.c.clinic_id, counters.c.year)).all()


def test_the_first_insert_adds_the_row_and_a_duplicate_is_ignored(connection):
    row = {"clinic_id": "main", "year": 2026, "last_number": 0}
    assert insert_ignoring_duplicates(connection, counters, row, unique=("clinic_id", "year")) is True
    assert insert_ignoring_duplicates(connection, counters, {**row, "last_number": 7},
                                      unique=("clinic_id", "year")) is False
    assert stored(connection) == [("main", 2026, 0)]  # the first writer's values stay


def test_only_the_named_key_decides(connection):
    insert_ignoring_duplicates(connection, counters, {"clinic_id": "main", "year": 2026, "last_number": 0},
                               unique=("clinic_id", "year"))
    added = insert_ignoring_duplicates(connection, counters, {"clinic_id": "main", "year": 2027, "last_number": 0},
                                       unique=("clinic_id", "year"))
    assert added is True
    assert [r.year for r in stored(connection)] == [2026, 2027]


def test_a_session_is_accepted_as_well_as_a_connection(connection):
    session = Session(bind=connection)
    row = {"clinic_id": "north", "year": 2026, "last_number": 0}
    assert insert_ignoring_duplicates(session, counters, row, unique=["clinic_id", "year"]) is True
    assert insert_ignoring_duplicates(session, counters, row, unique=["clinic_id", "year"]) is False
    session.flush()
    assert stored(connection) == [("north", 2026, 0)]


def test_a_single_unique_column_may_be_named_alone():
    engine = sa.create_engine("sqlite://")
    table = sa.Table("patients", sa.MetaData(), sa.Column("patient_id", sa.String, primary_key=True))
    with engine.begin() as connection:
        table.create(connection)
        assert insert_ignoring_duplicates(connection, table, {"patient_id": "p-1"}, unique="patient_id") is True
        assert insert_ignoring_duplicates(connection, table, {"patient_id": "p-1"}, unique="patient_id") is False
    engine.dispose()

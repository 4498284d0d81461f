import json
import sqlite3
import time

import pytest
import sqlalchemy as sa
from nameko.exceptions import deserialize, serialize
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import sessionmaker

from common.database import ServiceDatabase
from common.engines import Timeouts, make_engine
from common.errors import ERRORS_BY_NAME, NotFound, ServiceUnavailable


def test_database_errors_do_not_carry_the_values_into_logs(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'clinic.sqlite3'}")
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE people (name TEXT UNIQUE)"))
        connection.execute(sa.text("INSERT INTO people VALUES (:name)"), {"name": "Ana Lopez"})
    with pytest.raises(IntegrityError) as caught, engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO people VALUES (:name)"), {"name": "Ana Lopez"})
    assert "Ana Lopez" not in str(caught.value)
    assert "hidden" in str(caught.value)


class Provider:
    """The part of the Database dependency a ServiceDatabase uses."""

    service_name = "intake"
    publisher = None

    def __init__(self, url: str, timeouts: Timeouts):
        self.timeouts = timeouts
        self.engine = make_engine(url, timeouts)
        self.session_factory = sessionmaker(self.engine)


@pytest.fixture
def locked_database(tmp_path):
    """A SQLite database another connection holds the write lock on."""
    url = f"sqlite:///{tmp_path / 'clinic.sqlite3'}"
    provider = Provider(url, Timeouts(connect=0.1, statement=0.1))
    with provider.engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE people (name TEXT)"))
    holder = sqlite3.connect(tmp_path / "clinic.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    yield provider
    holder.rollback()
    holder.close()
    provider.engine.dispose()


def write(db: ServiceDatabase) -> None:
    with db.unit_of_work() as uow:
        uow.session.execute(sa.text("INSERT INTO people VALUES ('someone')"))


def test_a_caller_waiting_on_a_locked_database_is_told_the_service_is_unavailable(locked_database):
    with pytest.raises(ServiceUnavailable) as caught:
        write(ServiceDatabase(locked_database, {}, caller_waiting=True))
    assert caught.value.http_status == 503
    assert "nothing was saved" in caught.value.message


def test_an_event_handler_or_timer_gets_the_database_error_itself_to_retry_it(locked_database):
    # A ClinicError would be dead-lettered at once as a rejection.
    with pytest.raises(OperationalError):
        write(ServiceDatabase(locked_database, {}, caller_waiting=False))


def test_a_rule_broken_inside_a_unit_of_work_is_not_taken_for_an_outage(locked_database):
    with pytest.raises(NotFound):
        with ServiceDatabase(locked_database, {}, caller_waiting=True).unit_of_work():
            raise NotFound("no such patient")


def test_service_unavailable_is_rebuilt_on_the_callers_side_of_an_rpc():
    sent = serialize(ServiceUnavailable("the service's database is unavailable"))
    rebuilt = deserialize(json.loads(json.dumps(sent)))
    assert isinstance(rebuilt, ServiceUnavailable)
    assert rebuilt.http_status == 503 and rebuilt.message == "the service's database is unavailable"
    assert ERRORS_BY_NAME["ServiceUnavailable"] is ServiceUnavailable


def test_the_timeouts_come_from_configuration_with_defaults():
    assert Timeouts.from_config({}) == Timeouts(connect=5, statement=15)
    configured = Timeouts.from_config({"DATABASE_CONNECT_TIMEOUT": "2", "DATABASE_STATEMENT_TIMEOUT": 7})
    assert configured == Timeouts(connect=2, statement=7)
    assert configured.budget == 9  # below the gateway's 30 s by default


def test_work_that_outlasted_the_callers_wait_is_not_committed(tmp_path):
    provider = Provider(f"sqlite:///{tmp_path / 'clinic.sqlite3'}", Timeouts(connect=0.05, statement=0.05))
    with provider.engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE people (name TEXT)"))
    db = ServiceDatabase(provider, {}, caller_waiting=True)
    with pytest.raises(ServiceUnavailable) as caught:
        with db.unit_of_work() as uow:
            uow.session.execute(sa.text("INSERT INTO people VALUES ('someone')"))
            time.sleep(provider.timeouts.budget * 3)  # e.g. waiting on another service
    assert "nothing was saved" in caught.value.message
    with provider.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM people")).scalar_one() == 0

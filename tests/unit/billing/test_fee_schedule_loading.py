"""Loading the fee schedule file into a database: idempotent, additive,
never rewriting a stored price (on an in-memory SQLite database)."""
from datetime import date

import pytest
import sqlalchemy as sa

from services.billing.dependencies import load_fee_schedule
from services.billing.domain import validate_fee_schedule
from services.billing.models import Base, FeePrice

SCHEDULE = {"currency": "USD", "fees": [
    {"code": "96365", "description": "IV infusion, first hour", "prices": [
        {"effective_from": date(2026, 1, 1), "price_cents": 30000}]},
]}


@pytest.fixture
def engine():
    engine = sa.create_engine("sqlite://")
    Base.metadata.create_all(engine)
    yield engine
    engine.dispose()


def stored(engine):
    with engine.connect() as connection:
        return connection.execute(sa.select(FeePrice.code, FeePrice.effective_from, FeePrice.price_cents)
                                  .order_by(FeePrice.code, FeePrice.effective_from)).all()


def test_loading_twice_adds_nothing_the_second_time(engine):
    rows = validate_fee_schedule(SCHEDULE)
    assert load_fee_schedule(engine, rows) == 1
    assert load_fee_schedule(engine, rows) == 0
    assert stored(engine) == [("96365", date(2026, 1, 1), 30000)]


def test_a_new_effective_date_is_added_and_an_edited_price_is_not_applied(engine, caplog):
    load_fee_schedule(engine, validate_fee_schedule(SCHEDULE))
    edited = {"currency": "USD", "fees": [{"code": "96365", "description": "IV infusion, first hour", "prices": [
        {"effective_from": date(2026, 1, 1), "price_cents": 99999},
        {"effective_from": date(2027, 1, 1), "price_cents": 32000}]}]}
    assert load_fee_schedule(engine, validate_fee_schedule(edited)) == 1
    assert stored(engine) == [("96365", date(2026, 1, 1), 30000), ("96365", date(2027, 1, 1), 32000)]
    assert "stored price stays" in caplog.text


def test_the_fee_schedule_is_read_once_and_again_after_its_refresh_interval(tmp_path):
    from sqlalchemy.orm import Session

    from services.billing.dependencies import FeeSchedule

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'billing.sqlite3'}")
    FeePrice.__table__.create(engine)
    load_fee_schedule(engine, validate_fee_schedule(SCHEDULE))
    reads = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: reads.append(args[2]))
    schedule = FeeSchedule(refresh_seconds=3600)
    with Session(engine) as session:
        first = schedule.prices(session, "96365")
        for _ in range(5):
            assert schedule.prices(session, "96365") == first
        assert schedule.prices(session, "NOPE") == []
        assert len(reads) == 1
        schedule.invalidate()  # what the loader does after adding prices
        schedule.prices(session, "96365")
        assert len(reads) == 2

"""A record's related rows nested as JSON come back as the values a query
would have loaded (the PostgreSQL side is tests/service/test_nested_reads.py)."""
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common.nested import Related


class Base(DeclarativeBase):
    type_annotation_map = {datetime: sa.DateTime(timezone=True), dict: sa.JSON}


class Visit(Base):
    __tablename__ = "visits"
    visit_id: Mapped[str] = mapped_column(primary_key=True)


class Reading(Base):
    __tablename__ = "readings"
    reading_id: Mapped[str] = mapped_column(primary_key=True)
    visit_id: Mapped[str] = mapped_column(sa.ForeignKey("visits.visit_id"))
    taken_at: Mapped[datetime]
    taken_on: Mapped[date | None]
    weight_kg: Mapped[float | None] = mapped_column(sa.Numeric(5, 1, asdecimal=False))
    pulse: Mapped[int | None]
    alerts: Mapped[dict | None]


READINGS = Related(Reading, Reading.visit_id, Visit.visit_id, Reading.taken_at)


def test_each_column_is_loaded_as_its_type():
    [reading] = READINGS.unpack([{
        "reading_id": "r-1", "visit_id": "v-1", "taken_at": "2026-11-27T12:31:37.12-05:00",
        "taken_on": "2026-11-27", "weight_kg": 70, "pulse": 72, "alerts": {"bp": [184, 96]}}])
    assert reading.taken_at == datetime(2026, 11, 27, 17, 31, 37, 120000, tzinfo=timezone.utc)
    assert reading.taken_at.utcoffset() == timedelta(hours=-5)
    assert reading.taken_on == date(2026, 11, 27)
    assert (reading.weight_kg, type(reading.weight_kg)) == (70.0, float)
    assert (reading.pulse, reading.alerts) == (72, {"bp": [184, 96]})


def test_nulls_and_missing_rows():
    [reading] = READINGS.unpack([{"reading_id": "r-1", "visit_id": "v-1", "taken_at": "2026-11-27T12:00:00+00:00",
                                  "taken_on": None, "weight_kg": None, "pulse": None, "alerts": None}])
    assert (reading.taken_on, reading.weight_kg, reading.alerts) == (None, None, None)
    assert READINGS.unpack([]) == []
    assert Related(Reading, Reading.reading_id, Visit.visit_id, one=True).unpack(None) is None


def test_a_decimal_column_is_refused_its_scale_would_be_lost():
    class Price(Base):
        __tablename__ = "prices"
        price_id: Mapped[str] = mapped_column(primary_key=True)
        visit_id: Mapped[str] = mapped_column(sa.ForeignKey("visits.visit_id"))
        amount = mapped_column(sa.Numeric(8, 2))

    with pytest.raises(TypeError, match="Decimal"):
        Related(Price, Price.visit_id, Visit.visit_id)

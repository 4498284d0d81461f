import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from common.database import make_engine


def test_database_errors_do_not_carry_the_values_into_logs(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'clinic.sqlite3'}")
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE people (name TEXT UNIQUE)"))
        connection.execute(sa.text("INSERT INTO people VALUES (:name)"), {"name": "Ana Lopez"})
    with pytest.raises(IntegrityError) as caught, engine.begin() as connection:
        connection.execute(sa.text("INSERT INTO people VALUES (:name)"), {"name": "Ana Lopez"})
    assert "Ana Lopez" not in str(caught.value)
    assert "hidden" in str(caught.value)

"""The Idempotency-Key store on SQLite (the default database): replay, a
different request under a used key, and keys scoped by the caller. The same
rules on PostgreSQL, with a concurrent twin, are in
tests/service/test_idempotency_keys.py."""
from types import SimpleNamespace

import pytest
from sqlalchemy.orm import Session

from common import idempotency
from common.engines import make_engine
from common.errors import ValidationFailed
from common.validation import Schema


class Booking(Schema):
    starts_at: str
    note: str | None = None


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'clinic.sqlite3'}")
    idempotency.idempotency_metadata.create_all(engine)
    yield engine
    engine.dispose()


def claim(engine, key, *request, actor="ana (front_desk)", answer=None, operation="book_appointment"):
    """One request's transaction: claim, then (if it acted) remember."""
    with Session(engine) as session, session.begin():
        found = idempotency.claim(SimpleNamespace(session=session, actor=actor), operation, key, *request)
        if not found.replayed:
            found.remember(answer)
        return found


def test_the_same_key_and_request_replays_the_first_answer(engine):
    first = claim(engine, "k-1", "plan-1", Booking(starts_at="09:00"), answer={"appointment_id": "a-1"})
    # Whitespace trimmed by the schema makes no difference.
    again = claim(engine, "k-1", "plan-1", Booking(starts_at=" 09:00 "), answer={"appointment_id": "a-2"})
    assert not first.replayed
    assert again.replayed and again.answer == {"appointment_id": "a-1"}


def test_the_same_key_with_a_different_request_is_refused_naming_the_key(engine):
    claim(engine, "k-1", "plan-1", Booking(starts_at="09:00"), answer={})
    with pytest.raises(ValidationFailed, match="k-1") as caught:
        claim(engine, "k-1", "plan-1", Booking(starts_at="10:00"))
    assert caught.value.details[0]["field"] == "idempotency_key"
    with pytest.raises(ValidationFailed):
        claim(engine, "k-1", "plan-2", Booking(starts_at="09:00"))


def test_fields_left_to_their_default_do_not_change_the_request(engine):
    claim(engine, "k-1", Booking(starts_at="09:00"), answer={"n": 1})
    assert claim(engine, "k-1", Booking.model_validate({"starts_at": "09:00"})).answer == {"n": 1}
    with pytest.raises(ValidationFailed):
        claim(engine, "k-1", Booking(starts_at="09:00", note=None))


def test_keys_are_scoped_by_caller_and_operation(engine):
    claim(engine, "k-1", "x", answer="ana's", actor="ana (front_desk)")
    assert not claim(engine, "k-1", "y", answer="ben's", actor="ben (front_desk)").replayed
    assert not claim(engine, "k-1", "x", answer="an anonymous caller's", actor=None).replayed
    assert not claim(engine, "k-1", "z", answer="a course", operation="book_course").replayed
    assert claim(engine, "k-1", "y", actor="ben (front_desk)").answer == "ben's"


def test_without_a_key_nothing_is_stored(engine):
    assert not claim(engine, None, "x").replayed and not claim(engine, "", "x").replayed
    with engine.connect() as connection:
        assert connection.execute(idempotency.idempotency_keys.select()).all() == []


@pytest.mark.parametrize("key", ["with space", "tab\t", "é", "x" * 201, 12, ["k"]])
def test_a_malformed_key_is_refused(engine, key):
    with pytest.raises(ValidationFailed) as caught:
        claim(engine, key, "x")
    assert caught.value.details[0]["field"] == "idempotency_key"


def test_a_refused_request_leaves_its_key_free(engine):
    with pytest.raises(RuntimeError), Session(engine) as session, session.begin():
        idempotency.claim(SimpleNamespace(session=session, actor=None), "book_appointment", "k-1", "x")
        raise RuntimeError("the booking was refused")
    assert not claim(engine, "k-1", "y", actor=None).replayed

"""The Idempotency-Key store on PostgreSQL: a twin request sent while the
first is still in flight waits for it, then answers as it did (or, if the
first failed, acts itself)."""
from types import SimpleNamespace

import eventlet
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from common import idempotency
from common.engines import make_engine
from tests.support.billing import wait_until


@pytest.fixture
def engine(databases, clean_databases):
    engine = make_engine(databases["intake"])
    yield engine
    engine.dispose()


def claim(session, key="k-1", *request):
    return idempotency.claim(SimpleNamespace(session=session, actor="ana (front_desk)"), "register_patient",
                             key, *(request or ({"family_name": "Lopez"},)))


def twin(engine):
    """The retry, in its own transaction, as the service would run it."""
    with Session(engine) as session, session.begin():
        found = claim(session)
        if not found.replayed:
            found.remember({"patient_id": "made-by-the-twin"})
        return found


def waiting_on_a_lock(engine) -> bool:
    with engine.connect() as connection:
        return connection.execute(sa.text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )).scalar_one() > 0


@pytest.mark.parametrize("first_outcome", ["commits", "fails"])
def test_a_concurrent_twin_waits_for_the_first(engine, first_outcome):
    first = Session(engine)
    first.begin()
    claimed = claim(first)
    assert not claimed.replayed
    retry = eventlet.spawn(twin, engine)
    wait_until(lambda: waiting_on_a_lock(engine), timeout=30)
    assert not retry.dead
    if first_outcome == "commits":
        claimed.remember({"patient_id": "p-1"})
        first.commit()
        replayed = retry.wait()
        assert replayed.replayed and replayed.answer == {"patient_id": "p-1"}
    else:
        first.rollback()
        assert retry.wait().replayed is False
    first.close()
    with engine.connect() as connection:
        stored = connection.execute(sa.select(idempotency.idempotency_keys.c.answer)).scalars().all()
    assert stored == ([{"patient_id": "p-1"}] if first_outcome == "commits" else [{"patient_id": "made-by-the-twin"}])

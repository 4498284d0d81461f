"""A batch's events are claimed in one statement: the ids it returns are
the events this handler has not applied yet (on an in-memory SQLite
database; PostgreSQL is exercised by the service tests)."""
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from common.batching import claim_events, distinct_events
from common.outbox import plumbing_metadata


def event(event_id: str):
    return SimpleNamespace(event_id=event_id, type="session.completed")


@pytest.fixture
def session():
    engine = sa.create_engine("sqlite://")
    plumbing_metadata.create_all(engine)
    with Session(engine) as session:
        yield session
    engine.dispose()


def test_a_batch_claims_only_the_events_not_applied_yet(session):
    assert claim_events(session, [event("a"), event("b")], "billing.on_session_completed") == {"a", "b"}
    assert claim_events(session, [event("b"), event("c")], "billing.on_session_completed") == {"c"}
    # Another handler applies the same events on its own account.
    assert claim_events(session, [event("a")], "notifications.on_session_completed") == {"a"}
    assert claim_events(session, [], "billing.on_session_completed") == set()


def test_an_event_twice_in_one_batch_is_applied_once():
    assert [e.event_id for e in distinct_events([event("a"), event("b"), event("a")])] == ["a", "b"]

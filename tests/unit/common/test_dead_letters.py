"""The pure parts of retries and dead letters: which failures are an
outage, the backoff, and reading every kind of dead letter."""
import json
from datetime import datetime, timezone

import pytest
import sqlalchemy.exc as sa_exc

from cli.queues import queue_warning
from common.deadletters import H_LETTER_ID, H_REASON, handler_of_queue, peek_event, read_letter
from common.errors import Conflict, ValidationFailed
from common.handlers import is_transient, retry_delay, retry_queue


class SerializationFailure(Exception):
    """psycopg's name for it; SQLAlchemy wraps it in an OperationalError."""


def wrapped(error):
    try:
        try:
            raise error
        except Exception as inner:
            raise RuntimeError("while claiming the event") from inner
    except RuntimeError as outer:
        return outer


@pytest.mark.parametrize("error, transient", [
    (sa_exc.OperationalError("SELECT 1", {}, ConnectionRefusedError("refused")), True),
    (sa_exc.OperationalError("UPDATE", {}, SerializationFailure("could not serialize access")), True),
    (sa_exc.InterfaceError("SELECT 1", {}, Exception("connection already closed")), True),
    (sa_exc.TimeoutError("QueuePool limit reached"), True),
    (ConnectionResetError("reset by peer"), True),
    (TimeoutError("timed out"), True),
    (wrapped(ConnectionRefusedError("refused")), True),  # found through the cause chain
    (sa_exc.IntegrityError("INSERT", {}, Exception("duplicate key")), False),
    (KeyError("dose_mg"), False),
    (Conflict("declined before it was submitted"), False),
    (ValidationFailed("bad", details=[]), False),
])
def test_what_counts_as_an_infrastructure_fault(error, transient):
    assert is_transient(error) is transient


def test_backoff_doubles_up_to_its_cap():
    assert [retry_delay(n, 1, 60) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert retry_delay(1, 0.2, 1) == 0.2


def test_a_delay_queue_per_delay_hands_messages_back_to_the_handler_queue():
    queue = retry_queue(0.25, {"QUEUE_TYPE": "quorum"})
    assert queue.name == "clinic.retry.250ms" and queue.exchange.type == "fanout"
    assert queue.queue_arguments["x-message-ttl"] == 250
    assert queue.queue_arguments["x-dead-letter-exchange"] == ""  # routed by the handler queue's name
    assert "x-dead-letter-routing-key" not in queue.queue_arguments
    assert queue.queue_arguments["x-queue-type"] == "quorum"
    assert "x-queue-type" not in retry_queue(1, {}).queue_arguments


@pytest.mark.parametrize("queue, routing_key, expected", [
    ("evt-sessions-session.completed--billing.on_session_completed", "session.completed",
     ("billing", "billing.on_session_completed")),
    ("rpc-billing", "billing.record_payment", ("billing", "billing.record_payment")),
    ("rpc-billing", "intake.x", ("billing", None)),
    ("something-else", None, (None, None)),
])
def test_the_handler_is_read_from_the_queue_name(queue, routing_key, expected):
    assert handler_of_queue(queue, routing_key) == expected


EVENT = json.dumps({"event_id": "e-1", "type": "session.completed", "data": {"dose_mg": 35}}).encode()


def test_a_letter_the_clinic_wrote():
    letter = read_letter(EVENT, {"content_type": "application/json", "content_encoding": "utf-8",
                                 "application_headers": {H_REASON: "rejected", H_LETTER_ID: "l-1",
                                                         "x-clinic-handler": "billing.on_session_completed",
                                                         "x-clinic-attempts": 1, "nameko.correlation_id": "c"}})
    assert (letter.letter_id, letter.reason, letter.handler, letter.attempts, letter.event_id) == (
        "l-1", "rejected", "billing.on_session_completed", 1, "e-1")
    assert letter.original_headers() == {"nameko.correlation_id": "c"}
    assert "dose_mg" not in json.dumps(letter.summary())


def test_a_letter_the_broker_wrote():
    death = {"queue": "evt-sessions-session.completed--billing.on_session_completed", "reason": "delivery_limit",
             "count": 1, "exchange": "sessions.events", "routing-keys": ["session.completed"],
             "time": datetime(2026, 11, 27, 7, 0, tzinfo=timezone.utc)}
    letter = read_letter(EVENT, {"content_type": "application/json",
                                 "application_headers": {"x-death": [death], "x-delivery-count": 11}})
    assert letter.reason == "delivery-limit" and letter.handler == "billing.on_session_completed"
    assert letter.attempts == 11 and letter.failed_at.startswith("2026-11-27T07:00")
    assert letter.letter_id == read_letter(EVENT, {"application_headers": {"x-death": [death]}}).letter_id
    assert letter.original_headers() == {}


def test_an_envelope_letter_from_before_the_one_format():
    old = {"service": "billing", "handler": "billing.on_x", "queue": "evt-a-x--billing.on_x", "attempts": 5,
           "error": "KeyError: 'x'", "failed_at": "2026-11-25T10:00:00Z", "body": {"event_id": "e-2", "type": "x"}}
    letter = read_letter(json.dumps(old).encode(), {"content_type": "application/json"})
    assert (letter.reason, letter.event_id, letter.queue) == ("gave-up", "e-2", "evt-a-x--billing.on_x")
    assert json.loads(letter.body) == old["body"]


@pytest.mark.parametrize("body, content_type", [
    (b"not json", "application/json"), (b"[" * 5000, "application/json"), (b"[1, 2]", "application/json"),
    (EVENT, "text/plain"),
])
def test_peeking_at_a_body_that_is_not_an_event_finds_no_ids(body, content_type):
    assert peek_event(body, content_type) == (None, None)


@pytest.mark.parametrize("row, warning", [
    ({"queue": "clinic.retry.1000ms", "ready": 3, "consumers": 0}, "events waiting for a retry"),
    ({"queue": "clinic.retry.1000ms", "ready": 0, "consumers": 0}, ""),
    ({"queue": "clinic.dead-letters.discarded", "ready": 3, "consumers": 0}, ""),
])
def test_retry_and_discarded_queues_have_no_consumer_by_design(row, warning):
    assert queue_warning(row) == warning


def test_an_invalid_envelope_is_refused_naming_fields_not_values():
    from common.events import Event

    with pytest.raises(ValidationFailed) as refused:
        Event.from_body({"type": "session.completed", "data": {"patient": "Ana Lopez"}, "event_id": 7})
    assert "event_id" in str(refused.value) and "Ana Lopez" not in str(refused.value)
    with pytest.raises(ValidationFailed) as refused:
        Event.from_body(["Ana Lopez"])
    assert "Ana Lopez" not in str(refused.value)

"""What the live-update stream may show (gateway/stream.py): every event
contract is either streamed with an allow-list or deliberately not, every
allow-listed field is in its contract and is an id, state or time, and a
field a producer adds later never reaches the stream."""
import pytest

from gateway import stream
from services.events_catalogue import all_contracts

# Words that name what must never be streamed.
NEVER = ("name", "mrn", "phone", "email", "score", "phq9", "dose", "drug", "total", "amount", "balance", "cents",
         "value", "error", "reason", "flags", "band", "alerts", "body", "text", "diagnosis", "weight")


def test_every_contract_is_either_streamed_or_deliberately_not():
    streamed = {s.contract for s in stream.STREAMED.values()}
    assert not streamed & stream.NOT_STREAMED
    assert set(all_contracts()) - streamed - stream.NOT_STREAMED == set()


@pytest.mark.parametrize("event_type", sorted(stream.STREAMED))
def test_each_streamed_field_is_in_its_contract_and_no_sensitive_one_is(event_type):
    streamed = stream.STREAMED[event_type]
    assert streamed.contract.type == event_type
    assert set(streamed.fields) <= set(streamed.contract.model_fields)
    assert not [f for f in streamed.fields if any(word in f for word in NEVER)]


def test_every_role_s_types_are_streamed_and_admin_sees_them_all():
    for role, types in stream.TYPES_BY_ROLE.items():
        assert types <= set(stream.STREAMED), role
    assert stream.TYPES_BY_ROLE["admin"] == set(stream.STREAMED)
    assert "session.vitals_alert" not in stream.TYPES_BY_ROLE["front_desk"] | stream.TYPES_BY_ROLE["billing"]
    assert "notification.failed" not in stream.TYPES_BY_ROLE["clinician"]


def envelope(event_type, **data):
    return {"event_id": "e-1", "type": event_type, "version": 1, "occurred_at": "2026-11-27T10:00:00Z",
            "producer": "sessions", "correlation_id": "c-1", "data": data}


def test_the_projection_copies_only_allow_listed_fields_even_new_ones():
    shown = stream.projection(envelope(
        "session.vitals_alert", patient_id="p", session_id="s", mrn="MRN1", chair_id="c", clinician_id="d",
        recorded_at="2026-11-27T10:00:00Z", alerts=[{"code": "spo2_low", "value": 85}], added_later="secret"))
    assert shown == {"type": "session.vitals_alert", "event_id": "e-1", "occurred_at": "2026-11-27T10:00:00Z",
                     "patient_id": "p", "session_id": "s", "chair_id": "c", "clinician_id": "d",
                     "recorded_at": "2026-11-27T10:00:00Z"}


def test_only_dead_messages_are_streamed_and_unstreamed_or_foreign_events_are_not():
    failed = dict(notification_id="n", kind="staff_vitals_alert", channel="sms", recipient="staff",
                  patient_id=None, attempts=5, error="550 mailbox full")
    assert stream.projection(envelope("notification.failed", **failed, dead=False)) is None
    assert "error" not in stream.projection(envelope("notification.failed", **failed, dead=True))
    assert stream.projection(envelope("patient.registered", given_name="Ann")) is None
    assert stream.projection({"type": "session.vitals_alert", "data": "garbage"}) is None
    assert stream.projection(["not", "an", "envelope"]) is None


def test_types_narrow_a_role_s_stream_and_refuse_what_it_may_not_see():
    assert stream.types_for("clinician") == stream.TYPES_BY_ROLE["clinician"]
    assert stream.types_for("clinician", " session.vitals_alert ,patient.risk_flagged") == {
        "session.vitals_alert", "patient.risk_flagged"}
    with pytest.raises(stream.UnknownTypes):
        stream.types_for("front_desk", "session.vitals_alert")
    with pytest.raises(stream.UnknownTypes):
        stream.types_for("admin", "patient.registered")


def test_cursors_and_sse_framing():
    assert stream.parse_cursor(None) is None and stream.parse_cursor(" ") is None
    assert stream.parse_cursor("42") == 42
    assert stream.parse_cursor("-1") == stream.parse_cursor("4x") == stream.parse_cursor("9" * 30) == "unknown"
    assert stream.sse_event(7, "session.started", {"a": 1}) == b'id: 7\nevent: session.started\ndata: {"a":1}\n\n'
    assert stream.sse_event(None, "reset", {}).startswith(b"id: \n")
    assert stream.sse_cursor_only(9) == b"id: 9\n\n"

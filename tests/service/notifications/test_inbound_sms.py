"""The SMS provider's inbound webhook on notifications' own HTTP port, on the
real broker and PostgreSQL: signature, replays, the carrier keywords, the
pre-visit reply, unknown senders. Delivery is switched off (the scheduler's
first sweep is an hour away) so each test sees what was queued; the whole
chain through intake and a real SMS provider stand-in is in
tests/integration/test_two_way_sms.py."""
import json
import logging
import time
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa

from services.notifications.channels import sign
from services.notifications.service import NotificationsService
from services.notifications.two_way_sms import SIGNATURE_HEADER, TIMESTAMP_HEADER
from tests.conftest import web_address
from tests.service.notifications.test_notifications_entrypoints import NO_QUIET_HOURS, deliver, messages, patient
from tests.support.notifications import appointment_facts, iso_in

SECRET = "provider-secret"
PHONE = "+14155550123"


@pytest.fixture
def notifications(start_service):
    return start_service(NotificationsService, NOTIFICATIONS={
        "SCHEDULER_INTERVAL": 3600, **NO_QUIET_HOURS, "SMS_WEBHOOK_SECRET": SECRET,
        "CLINIC_DISPLAY_NAME": "Harbor Wellness", "CLINIC_PHONE": "+1 415 555 0100"})


@pytest.fixture
def sent_events(events):
    return events.listen("notifications")


def text(container, body, sender=PHONE, message_id=None, secret=SECRET, timestamp=None, raw=None):
    payload = raw if raw is not None else json.dumps(
        {"message_id": message_id or f"SM{uuid.uuid4().hex}", "from": sender, "to": "+14155550100",
         "body": body}).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return httpx.post(f"{web_address(container)}/sms/inbound", content=payload, timeout=10, headers={
        "Content-Type": "application/json", TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(secret, stamp, payload)})


def inbound_rows(databases):
    with databases.engine("notifications").connect() as connection:
        return [dict(row) for row in connection.execute(sa.text("SELECT * FROM inbound_sms ORDER BY received_at"))
                .mappings()]


def replies(call, pid):
    return [m for m in messages(call, patient_id=pid) if m["kind"].startswith("sms_")]


def test_a_request_not_signed_by_the_provider_is_refused_and_leaves_nothing(notifications, amqp, call, databases):
    pid = patient(notifications, amqp)
    for answer in (text(notifications, "STOP", secret="guessed"),
                   text(notifications, "STOP", timestamp=int(time.time()) - 301),
                   httpx.post(f"{web_address(notifications)}/sms/inbound", timeout=10,
                              json={"message_id": "SM1", "from": PHONE, "body": "STOP"})):
        assert answer.status_code == 401
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"].endswith("/signature_invalid")
    assert inbound_rows(databases) == [] and replies(call, pid) == []


@pytest.mark.parametrize("raw", [b"STOP", b"[]", b'{"message_id": "SM1", "from": "99999", "body": "STOP"}', b"\xff"])
def test_a_signed_body_that_is_not_an_inbound_sms_is_a_422_naming_no_value(notifications, raw, databases):
    answer = text(notifications, None, raw=raw)
    assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json"
    assert "99999" not in answer.text and "STOP" not in answer.text
    assert inbound_rows(databases) == []


def test_without_a_secret_configured_nothing_is_taken(start_service):
    container = start_service(NotificationsService, NOTIFICATIONS={"SCHEDULER_INTERVAL": 3600})
    answer = text(container, "STOP", secret="")
    assert answer.status_code == 503 and answer.json()["type"].endswith("/not_configured")


def test_stop_asks_intake_to_withdraw_and_is_answered_once_even_if_replayed(notifications, amqp, call, databases,
                                                                           sent_events):
    pid = patient(notifications, amqp)
    answer = text(notifications, "  Stop. ", message_id="SM-stop-1")
    assert (answer.status_code, answer.json()) == (200, {"status": "received"})
    event = sent_events.wait_for("sms.keyword_received")
    assert {k: event["data"][k] for k in ("patient_id", "keyword")} == {"patient_id": pid, "keyword": "stop"}
    [row] = inbound_rows(databases)
    assert (row["keyword"], row["outcome"], row["patient_ids"], row["sender_hint"]) == (
        "stop", "consent_withdrawal_requested", [pid], None)
    assert event["data"]["inbound_id"] == row["inbound_id"]
    assert "body" not in row and "Stop" not in json.dumps(row, default=str)
    [confirmation] = replies(call, pid)
    # Urgent: the sweep for staff alerts sends it at once (no provider here, so it fails).
    assert (confirmation["kind"], confirmation["channel"], confirmation["urgent"]) == (
        "sms_opt_out_confirmation", "sms", True)
    # The same message again (a replayed request, or the provider retrying) does nothing more.
    again = text(notifications, "STOP", message_id="SM-stop-1")
    assert again.status_code == 409 and again.json()["type"].endswith("/replayed")
    assert len(inbound_rows(databases)) == 1 and len(replies(call, pid)) == 1
    assert len(sent_events.events("sms.keyword_received")) == 1
    trail = call("list_record_access", pid)
    assert [(e["action"], e["actor"]) for e in trail if e["action"].startswith("sms_")] == [
        ("sms_stop_received", "patient (sms)")]


def test_start_asks_intake_to_restore_and_help_is_answered_without_an_event(notifications, amqp, call, databases,
                                                                           sent_events):
    pid = patient(notifications, amqp, consents=("email",))
    assert text(notifications, "UNSTOP").status_code == 200
    assert sent_events.wait_for("sms.keyword_received")["data"]["keyword"] == "start"
    assert text(notifications, "help").status_code == 200
    assert sorted(m["kind"] for m in replies(call, pid)) == ["sms_help_reply", "sms_opt_in_confirmation"]
    assert [r["outcome"] for r in inbound_rows(databases)] == ["consent_restore_requested", "help_answered"]
    assert len(sent_events.events("sms.keyword_received")) == 1


def test_a_number_two_patients_share_withdraws_both_and_is_answered_once(notifications, amqp, call, sent_events):
    first, second = patient(notifications, amqp), patient(notifications, amqp)
    assert text(notifications, "QUIT").status_code == 200
    sent_events.wait_for("sms.keyword_received", count=2)
    assert {e["data"]["patient_id"] for e in sent_events.events("sms.keyword_received")} == {first, second}
    assert len(replies(call, first) + replies(call, second)) == 1


def test_an_unknown_sender_gets_nothing_and_leaves_an_audit_line_without_the_text(notifications, amqp, call,
                                                                                 databases, sent_events, caplog):
    pid = patient(notifications, amqp)
    with caplog.at_level(logging.INFO):
        assert text(notifications, "STOP my private words", sender="+12125550199").status_code == 200
        assert text(notifications, "STOP", sender="+12125550199").status_code == 200
    rows = inbound_rows(databases)
    assert [(r["outcome"], r["sender_hint"], r["patient_ids"]) for r in rows] == [
        ("unknown_sender", "…0199", []), ("unknown_sender", "…0199", [])]
    assert "private words" not in caplog.text and "2125550199" not in caplog.text
    assert "from a number no patient has" in caplog.text
    assert messages(call, kind="sms_opt_out_confirmation") == [] and replies(call, pid) == []
    nothing_more_than(sent_events, notifications, pid)
    assert len(sent_events.events("sms.keyword_received")) == 1


def book(container, amqp, pid, appointment_id, starts_in_days=3) -> datetime:
    data = appointment_facts(pid, appointment_id, starts_in_seconds=starts_in_days * 86400)
    deliver(container, "on_appointment_scheduled", amqp, "sessions", "appointment.scheduled", data)
    return datetime.fromisoformat(data["starts_at"].replace("Z", "+00:00"))


def nothing_more_than(sent_events, container, pid):
    """Events leave in order: once a later STOP's event is seen, an earlier
    text's event would have been too."""
    assert text(container, "STOP").status_code == 200
    sent_events.wait_for("sms.keyword_received", where=lambda e: e["data"]["patient_id"] == pid)


def mark_previsit_sent(databases, appointment_id, seconds_ago=60):
    with databases.engine("notifications").begin() as connection:
        connection.execute(sa.text(
            "UPDATE messages SET status = 'sent', sent_at = now() - make_interval(secs => :ago) "
            "WHERE appointment_id = :a AND kind = 'previsit_instructions'"), {"a": appointment_id, "ago": seconds_ago})


def test_each_booking_queues_the_previsit_message_by_sms_the_day_before(notifications, amqp, call):
    zone = ZoneInfo("America/New_York")
    pid = patient(notifications, amqp, time_zone="America/New_York")
    starts = book(notifications, amqp, pid, "appt-pv")
    [previsit] = [m for m in messages(call, appointment_id="appt-pv") if m["kind"] == "previsit_instructions"]
    assert previsit["channel"] == "sms" and previsit["status"] == "queued"
    due = datetime.fromisoformat(previsit["due_at"].replace("Z", "+00:00")).astimezone(zone)
    assert due.date() == starts.astimezone(zone).date() - timedelta(days=1) and (due.hour, due.minute) == (10, 0)


@pytest.mark.parametrize("reply, answer", [("YES", "confirmed"), (" yes! ", "confirmed"), ("No", "declined"),
                                           ("Can I bring my sister?", "unrecognised")])
def test_a_reply_to_the_previsit_message_is_sent_on_for_its_appointment(notifications, amqp, call, databases,
                                                                       sent_events, reply, answer):
    pid = patient(notifications, amqp)
    book(notifications, amqp, pid, "appt-earlier", starts_in_days=3)
    book(notifications, amqp, pid, "appt-later", starts_in_days=5)
    mark_previsit_sent(databases, "appt-earlier", seconds_ago=3600)
    mark_previsit_sent(databases, "appt-later", seconds_ago=60)
    assert text(notifications, reply).status_code == 200
    event = sent_events.wait_for("previsit.reply_received")
    [row] = inbound_rows(databases)
    assert event["data"] == {"reply_id": row["inbound_id"], "appointment_id": "appt-later", "patient_id": pid,
                             "answer": answer, "received_at": event["data"]["received_at"]}
    assert (row["outcome"], row["appointment_id"]) == ("previsit_reply", "appt-later")
    assert replies(call, pid) == []  # a reply is not answered by text
    assert "previsit_reply_received" in [e["action"] for e in call("list_record_access", pid)]


def test_a_reply_matches_no_cancelled_or_past_appointment_and_none_unasked(notifications, amqp, call, databases,
                                                                         sent_events):
    pid = patient(notifications, amqp)
    assert text(notifications, "YES").status_code == 200  # nothing asked yet
    book(notifications, amqp, pid, "appt-cancelled")
    mark_previsit_sent(databases, "appt-cancelled")
    deliver(notifications, "on_appointment_cancelled", amqp, "sessions", "appointment.cancelled", {
        "patient_id": pid, "appointment_id": "appt-cancelled", "starts_at": iso_in(3 * 86400),
        "cancelled_at": iso_in(0), "late": False, "cancelled_by_role": "front_desk"})
    assert text(notifications, "YES").status_code == 200
    assert [r["outcome"] for r in inbound_rows(databases)] == ["unmatched", "unmatched"]
    nothing_more_than(sent_events, notifications, pid)
    assert sent_events.events("previsit.reply_received") == []


def test_stop_stops_texts_at_once_before_intake_answers(notifications, amqp, call, sent_events):
    pid = patient(notifications, amqp)
    assert call("get_preferences", pid)["sms"]["consented"] is True
    assert text(notifications, "STOP").status_code == 200
    # No intake runs here: notifications itself honoured the STOP, so a text
    # already due cannot go out before intake's consent.recorded arrives.
    assert call("get_preferences", pid)["sms"]["consented"] is False
    assert sent_events.wait_for("sms.keyword_received")["data"]["keyword"] == "stop"

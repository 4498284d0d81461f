"""The live-update stream (GET /api/v1/stream) on the real broker: what each
role sees, with ids, states and times only; a reconnect with Last-Event-ID
replays exactly what was missed; tickets for EventSource; the refusals."""
import json
import uuid

import eventlet
import httpx
import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from gateway import stream
from gateway.service import GatewayService
from services.intake.service import IntakeService
from services.sessions.service import SessionsService
from tests.conftest import web_address
from tests.support.billing import wait_until
from tests.support.events import publish_event
from tests.support.intake import approved_patient
from tests.support.sessions import BASELINE, CHECKLIST, clinic_monday, clinic_time, iso, move_to_today

CLIN, FRONT, BILL, ADMIN = ({"Authorization": f"Bearer {t}"} for t in ("t-clin", "t-front", "t-bill", "t-admin"))
STREAM = "/api/v1/stream"
# Every stream in these tests ends by itself: a broken expectation fails
# instead of hanging.
BOUND = "20"


class Subscription:
    """An open SSE answer, read line by line: ``opened`` once the gateway
    is consuming, so what is published afterwards reaches it."""

    def __init__(self, api: httpx.Client, headers=None, **params):
        self.context = api.stream("GET", STREAM, headers=headers or {}, params={"max_seconds": BOUND, **params})
        self.answer = self.context.__enter__()
        assert self.answer.status_code == 200, self.answer.read()
        assert self.answer.headers["content-type"].startswith("text/event-stream")
        self.lines = self.answer.iter_lines()
        self.retry = None
        while self.retry is None:
            line = next(self.lines)
            if line.startswith("retry:"):
                self.retry = int(line.split(":", 1)[1])

    def events(self, until=lambda got: False) -> list[dict]:
        """Events read until ``until(events so far)`` holds or the stream ends."""
        got, current = [], {}
        for line in self.lines:
            if line == "":
                if "event" in current:
                    got.append({"id": current.get("id"), "event": current["event"],
                                "data": json.loads(current["data"])})
                    if until(got):
                        break
                current = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                current[name] = value[1:] if value.startswith(" ") else value
        return got

    def close(self):
        self.context.__exit__(None, None, None)


def upto(event_type, **fields):
    return lambda got: any(e["event"] == event_type and all(e["data"].get(k) == v for k, v in fields.items())
                           for e in got)


@pytest.fixture
def gateway(start_service):
    return start_service(GatewayService)


@pytest.fixture
def api(gateway):
    with httpx.Client(base_url=web_address(gateway), timeout=30) as client:
        yield client


def risk_flag(amqp_uri, patient_id="pat-1"):
    return publish_event(amqp_uri, "intake", "patient.risk_flagged", {
        "patient_id": patient_id, "mrn": "MRN0000001", "flags": ["cssrs_positive"], "instrument": "cssrs",
        "band": "positive", "response_id": str(uuid.uuid4())})


def invoice_issued(amqp_uri, patient_id="pat-1"):
    return publish_event(amqp_uri, "billing", "invoice.issued", {
        "patient_id": patient_id, "invoice_id": str(uuid.uuid4()), "number": "INV-000001", "total_cents": 45000,
        "currency": "USD", "due_date": "2026-12-01", "issued_at": "2026-11-27T10:00:00Z"})


def appointment_cancelled(amqp_uri, appointment_id):
    return publish_event(amqp_uri, "sessions", "appointment.cancelled", {
        "patient_id": "pat-1", "appointment_id": appointment_id, "starts_at": "2026-12-01T14:00:00Z",
        "cancelled_at": "2026-11-27T10:00:00Z", "late": False, "cancelled_by_role": "front_desk"})


def test_a_vitals_alert_raised_by_sessions_reaches_clinicians_with_ids_and_states_only(
        start_service, gateway, api, clinic_config, databases):
    for service in (IntakeService, SessionsService):
        start_service(service)
    clinician, front_desk, billing = Subscription(api, CLIN), Subscription(api, FRONT), Subscription(api, BILL)
    with ClusterRpcProxy(clinic_config, context_data={"actor": "dr.who (clinician)"}) as rpc:
        pid = approved_patient(lambda method, *args: getattr(rpc.intake, method)(*args))["patient_id"]
        wait_until(lambda: rpc.sessions.get_eligibility(pid).get("eligible"))
        chair = rpc.sessions.add_resource({"kind": "chair", "name": "Chair 1"})["resource_id"]
        doctor = rpc.sessions.add_resource({"kind": "clinician", "name": "Dr A"})["resource_id"]
        plan = rpc.sessions.create_plan({"patient_id": pid, "route": "iv_infusion",
                                         "indication": "treatment_resistant_depression"})
        appointment = rpc.sessions.book_appointment({
            "plan_id": plan["plan_id"], "starts_at": iso(clinic_time(clinic_monday(), 9)),
            "chair_id": chair, "clinician_id": doctor})
        move_to_today(databases.engine("sessions"), appointment["appointment_id"])
        session = rpc.sessions.check_in(appointment["appointment_id"], CHECKLIST)
        rpc.sessions.record_vitals(session["session_id"], {**BASELINE, "systolic": 195, "spo2": 85})

    seen = clinician.events(until=upto("session.vitals_alert", session_id=session["session_id"]))
    alert = seen[-1]
    assert alert["data"] == {
        "type": "session.vitals_alert", "event_id": alert["data"]["event_id"],
        "occurred_at": alert["data"]["occurred_at"], "patient_id": pid, "session_id": session["session_id"],
        "chair_id": chair, "clinician_id": doctor, "recorded_at": alert["data"]["recorded_at"]}
    assert int(alert["id"]) >= 0
    assert [e["event"] for e in seen if e["data"].get("session_id") == session["session_id"]][0] == \
        "session.checked_in"
    assert {e["event"] for e in seen} <= stream.TYPES_BY_ROLE["clinician"]

    # A marker each of the other roles sees, published after the alert.
    marker = str(uuid.uuid4())
    appointment_cancelled(clinic_config["AMQP_URI"], marker)
    desk = front_desk.events(until=upto("appointment.cancelled", appointment_id=marker))
    assert "session.vitals_alert" not in {e["event"] for e in desk}
    assert {"appointment.scheduled", "session.checked_in"} <= {e["event"] for e in desk}
    checked_in = next(e for e in desk if e["event"] == "session.checked_in")
    assert set(checked_in["data"]) == {"type", "event_id", "occurred_at", "patient_id", "session_id",
                                       "appointment_id", "checked_in_at"}
    issued = invoice_issued(clinic_config["AMQP_URI"], pid)
    money = billing.events(until=upto("invoice.issued", invoice_id=issued["data"]["invoice_id"]))
    assert {e["event"] for e in money} == {"invoice.issued"}
    assert "total_cents" not in money[0]["data"]
    for subscription in (clinician, front_desk, billing):
        subscription.close()


def test_a_reconnect_with_last_event_id_gets_exactly_the_missed_events_in_order(api, clinic_config):
    amqp = clinic_config["AMQP_URI"]
    first = Subscription(api, CLIN)
    before = [risk_flag(amqp)["event_id"] for _ in range(2)]
    seen = first.events(until=lambda got: len(got) == 2)
    assert [e["data"]["event_id"] for e in seen] == before
    first.close()

    missed = []
    for _ in range(3):
        invoice_issued(amqp)  # not the clinician's: replayed past, not shown
        missed.append(risk_flag(amqp)["event_id"])
    again = Subscription(api, {**CLIN, "Last-Event-ID": seen[-1]["id"]})
    replayed = again.events(until=lambda got: len(got) == 3)
    assert [e["data"]["event_id"] for e in replayed] == missed
    assert len({e["id"] for e in replayed}) == 3 and all(int(e["id"]) > int(seen[-1]["id"]) for e in replayed)
    # And then live, from the same connection.
    live = risk_flag(amqp)["event_id"]
    assert [e["data"]["event_id"] for e in again.events(until=lambda got: len(got) == 1)] == [live]
    again.close()

    # EventSource polyfills send the cursor in the query.
    polyfill = Subscription(api, CLIN, last_event_id=replayed[0]["id"])
    assert [e["data"]["event_id"] for e in polyfill.events(until=lambda got: len(got) == 3)] == missed[1:] + [live]
    polyfill.close()


def test_a_cursor_the_stream_never_gave_out_is_answered_with_a_reset_event(api, clinic_config):
    for cursor in ("not-a-cursor", "987654321"):
        subscription = Subscription(api, {**CLIN, "Last-Event-ID": cursor})
        [reset] = subscription.events(until=lambda got: True)
        assert reset["event"] == "reset" and reset["id"] == ""
        # Live from then on.
        flagged = risk_flag(clinic_config["AMQP_URI"])["event_id"]
        [after] = subscription.events(until=lambda got: True)
        assert after["data"]["event_id"] == flagged
        subscription.close()


def test_a_ticket_opens_one_stream_once_and_only_for_its_user(api):
    answer = api.post(f"{STREAM}/tickets", headers=FRONT)
    assert answer.status_code == 201
    ticket = answer.json()
    assert set(ticket) == {"ticket", "expires_at"} and len(ticket["ticket"]) >= 40
    subscription = Subscription(api, ticket=ticket["ticket"], types="appointment.cancelled")
    subscription.close()
    reused = api.get(STREAM, params={"ticket": ticket["ticket"], "max_seconds": "1"})
    assert reused.status_code == 401
    assert reused.headers["content-type"] == "application/problem+json"
    # A front desk ticket opens a front desk stream: no clinical types.
    narrowed = api.get(STREAM, params={"ticket": api.post(f"{STREAM}/tickets", headers=FRONT).json()["ticket"],
                                       "types": "session.vitals_alert", "max_seconds": "1"})
    assert narrowed.status_code == 422


def test_an_expired_ticket_is_refused(start_service):
    gateway = start_service(GatewayService, STREAM_TICKET_SECONDS=1)
    with httpx.Client(base_url=web_address(gateway), timeout=30) as api:
        ticket = api.post(f"{STREAM}/tickets", headers=CLIN).json()["ticket"]
        eventlet.sleep(1.5)
        answer = api.get(STREAM, params={"ticket": ticket, "max_seconds": "1"})
    assert answer.status_code == 401 and answer.json()["code"] == "unauthorized"


def test_without_a_valid_token_or_ticket_the_stream_is_refused_with_a_problem(api):
    for headers, params in (({}, {}), ({"Authorization": "Bearer nope"}, {}), ({}, {"ticket": "x" * 43})):
        answer = api.get(STREAM, headers=headers, params={**params, "max_seconds": "1"})
        assert answer.status_code == 401, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
    assert api.post(f"{STREAM}/tickets").status_code == 401


def test_beyond_stream_max_clients_a_subscriber_is_told_to_come_back(start_service):
    gateway = start_service(GatewayService, STREAM_MAX_CLIENTS=1)
    with httpx.Client(base_url=web_address(gateway), timeout=30) as api:
        first = Subscription(api, ADMIN, max_seconds="2")
        refused = api.get(STREAM, headers=ADMIN, params={"max_seconds": "1"})
        assert refused.status_code == 503 and int(refused.headers["Retry-After"]) > 0
        # Ordinary requests are still answered meanwhile.
        assert api.get("/api/v1/openapi.json").status_code == 200
        # A stream that ended (or whose client went away: noticed at the
        # next write, a heartbeat at the latest) frees its place.
        assert first.events() == []
        first.close()
        assert wait_until(lambda: api.get(STREAM, headers=ADMIN, params={"max_seconds": "1"}).status_code == 200)


def test_any_gateway_replica_takes_another_s_ticket_and_cursor(start_service, api, clinic_config):
    other = start_service(GatewayService)
    amqp = clinic_config["AMQP_URI"]
    first = Subscription(api, ADMIN)
    flagged = risk_flag(amqp)["event_id"]
    [seen] = first.events(until=lambda got: True)
    assert seen["data"]["event_id"] == flagged
    first.close()
    missed = [invoice_issued(amqp)["event_id"], risk_flag(amqp)["event_id"]]
    with httpx.Client(base_url=web_address(other), timeout=30) as elsewhere:
        ticket = api.post(f"{STREAM}/tickets", headers=ADMIN).json()["ticket"]
        again = Subscription(elsewhere, ticket=ticket, last_event_id=seen["id"])
        assert [e["data"]["event_id"] for e in again.events(until=lambda got: len(got) == 2)] == missed
        again.close()


def test_a_cursor_older_than_the_window_is_answered_with_a_reset_event(start_service, clinic_config):
    # A window of a few kilobytes: the first events are gone after a few dozen more.
    gateway = start_service(GatewayService, STREAM_MAX_BYTES=4000)
    amqp = clinic_config["AMQP_URI"]
    with httpx.Client(base_url=web_address(gateway), timeout=30) as api:
        first = Subscription(api, ADMIN)
        published = [invoice_issued(amqp)["event_id"] for _ in range(60)]
        seen = first.events(until=lambda got: len(got) == 60)
        first.close()
        assert [e["data"]["event_id"] for e in seen] == published
        latest = risk_flag(amqp)["event_id"]

        again = Subscription(api, {**ADMIN, "Last-Event-ID": seen[0]["id"]})
        [reset] = again.events(until=lambda got: True)
        assert (reset["event"], reset["id"]) == ("reset", "")
        again.close()
        # Within the window, the same stream replays.
        recent = Subscription(api, ADMIN, last_event_id=seen[-1]["id"])
        assert [e["data"]["event_id"] for e in recent.events(until=lambda got: True)] == [latest]
        recent.close()

"""Staff reach the delivery log, dead messages, resend and preferences
through the gateway, with roles checked and problem+json errors."""
import uuid

import httpx
import pytest
import sqlalchemy as sa

from gateway.service import GatewayService
from services.notifications.service import NotificationsService
from tests.conftest import web_address
from tests.support.events import publish_event
from tests.support.notifications import register_patient, wait_until, zone_where_it_is

FRONT = {"Authorization": "Bearer t-front"}
BILL = {"Authorization": "Bearer t-bill"}


@pytest.fixture
def api(start_service):
    # Delivery is off (first sweep in an hour): the test looks at what is owed.
    start_service(NotificationsService, NOTIFICATIONS={"SCHEDULER_INTERVAL": 3600})
    gateway = start_service(GatewayService)
    with httpx.Client(base_url=web_address(gateway), timeout=15) as client:
        yield client


def registered(api, clinic_config, hour_there: int = 12) -> str:
    # Quiet hours are the default 21:00–08:00: the patient lives where it is now ``hour_there``:xx.
    pid = str(uuid.uuid4())
    zone = zone_where_it_is(hour_there)
    register_patient(clinic_config["AMQP_URI"], pid, consents=(), time_zone=zone)
    # The consents (which queue the welcome) only once the time zone is known.
    wait_until(lambda: api.get(f"/api/v1/patients/{pid}/notification-preferences", headers=FRONT)
               .json().get("time_zone") == zone, 10, "the registration did not arrive")
    for kind in ("email", "sms"):
        publish_event(clinic_config["AMQP_URI"], "intake", "consent.recorded", {
            "patient_id": pid, "consent_id": f"c-{kind}-{pid}", "kind": kind, "status": "granted",
            "effective_at": "2026-01-01T00:00:00Z"})
    wait_until(lambda: len(api.get("/api/v1/notifications", params={"patient_id": pid}, headers=FRONT)
                           .json().get("items", [])) == 2, 10, "the welcome messages were not queued")
    return pid


@pytest.fixture
def patient_id(api, clinic_config):
    return registered(api, clinic_config)


def test_staff_read_the_delivery_log_and_a_message(api, patient_id):
    page = api.get("/api/v1/notifications", params={"patient_id": patient_id, "limit": 1}, headers=BILL)
    assert page.status_code == 200, page.text
    assert (page.json()["total"], len(page.json()["items"]), page.json()["limit"]) == (2, 1, 1)
    by_channel = api.get("/api/v1/notifications", params={"patient_id": patient_id, "channel": "sms"}, headers=FRONT)
    [sms] = by_channel.json()["items"]
    one = api.get(f"/api/v1/notifications/{sms['notification_id']}", headers=FRONT).json()
    assert one["kind"] == "welcome" and [e["status"] for e in one["log"]] == ["queued"]


def test_a_message_held_for_quiet_hours_shows_the_deferral_in_its_log(api, clinic_config):
    pid = registered(api, clinic_config, hour_there=2)
    for message in api.get("/api/v1/notifications", params={"patient_id": pid}, headers=FRONT).json()["items"]:
        log = api.get(f"/api/v1/notifications/{message['notification_id']}", headers=FRONT).json()["log"]
        assert [e["status"] for e in log] == ["queued", "deferred"]
        assert log[1]["detail"].startswith("quiet hours (21:00–08:00 in Etc/GMT")
        assert "held until" in log[1]["detail"]


def test_preferences_are_read_by_any_staff_and_changed_by_front_desk(api, patient_id):
    path = f"/api/v1/patients/{patient_id}/notification-preferences"
    assert api.get(path, headers=BILL).json()["sms"]["consented"] is True
    changed = api.put(path, json={"sms": False}, headers=FRONT)
    assert changed.status_code == 200 and changed.json()["sms"]["enabled"] is False
    refused = api.put(path, json={"sms": True}, headers=BILL)
    assert refused.status_code == 403 and refused.headers["Content-Type"] == "application/problem+json"
    invalid = api.put(path, json={"sms": "maybe"}, headers=FRONT)
    assert invalid.status_code == 422 and invalid.json()["errors"][0]["field"] == "sms"
    unknown = api.get(f"/api/v1/patients/{uuid.uuid4()}/notification-preferences", headers=FRONT)
    assert unknown.status_code == 404


def test_dead_messages_are_listed_and_can_be_resent(api, patient_id, databases):
    with databases.engine("notifications").begin() as connection:
        connection.execute(sa.text("UPDATE messages SET status='dead', attempts=8, last_error='SMTP 550' "
                                   "WHERE patient_id=:p AND channel='email'"), {"p": patient_id})
    dead = api.get("/api/v1/notifications/dead", headers=FRONT).json()
    assert dead["total"] == 1 and dead["items"][0]["last_error"] == "SMTP 550"
    notification_id = dead["items"][0]["notification_id"]
    resent = api.post(f"/api/v1/notifications/{notification_id}/resend", params={"urgent": "true"}, headers=FRONT)
    assert resent.status_code == 200, resent.text
    assert (resent.json()["status"], resent.json()["urgent"]) == ("queued", True)
    log = api.get(f"/api/v1/notifications/{notification_id}", headers=FRONT).json()["log"]
    assert log[-1]["actor"] == "frontdesk (front_desk)"
    assert api.get("/api/v1/notifications/dead", headers=FRONT).json()["total"] == 0
    with databases.engine("notifications").begin() as connection:
        connection.execute(sa.text("UPDATE messages SET status='sent' WHERE notification_id=:n"),
                           {"n": notification_id})
    again = api.post(f"/api/v1/notifications/{notification_id}/resend", headers=FRONT)
    assert again.status_code == 409
    missing = api.post(f"/api/v1/notifications/{uuid.uuid4()}/resend", headers=FRONT)
    assert missing.status_code == 404


def test_bad_filters_are_named(api):
    answer = api.get("/api/v1/notifications", params={"status": "lost"}, headers=FRONT)
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "status"
    assert api.get("/api/v1/notifications", params={"limit": 500}, headers=FRONT).status_code == 422
    assert api.get("/api/v1/notifications").status_code == 401

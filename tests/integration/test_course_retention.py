"""Course retention on the real broker, through the gateway: a completed
induction session with nothing booked after it opens a front-desk task once
the (here, empty) rebooking window has passed and the timer has run; booking
the next session closes it. A patient's "confirmed" pre-visit reply shows at
check-in; a "declined" one asks the front desk to call."""
import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from gateway.service import GatewayService
from services.sessions.service import SessionsService
from tests.conftest import web_address
from tests.support.events import publish_event
from tests.support.billing import wait_until
from tests.support.sessions import (
    BASELINE, CHECKLIST, approval_data, clinic_monday, clinic_time, discharge, iso, move_to_today,
)

FRONT = {"Authorization": "Bearer t-front"}
CLIN = {"Authorization": "Bearer t-clin"}
ADMIN = {"Authorization": "Bearer t-admin"}
MONDAY = clinic_monday()


@pytest.fixture
def api(start_service):
    start_service(SessionsService, SESSIONS={"retention_rebook_hours": 0, "retention_scan_seconds": 0.3})
    gateway = start_service(GatewayService)
    with httpx.Client(base_url=web_address(gateway), timeout=15) as client:
        yield client


def ok(answer, status=200):
    assert answer.status_code == status, answer.text
    return answer.json()


def test_a_lapsing_course_and_pre_visit_replies_reach_the_front_desk(api, clinic_config, databases, events):
    amqp = clinic_config["AMQP_URI"]
    events.listen("sessions")
    pid = str(uuid.uuid4())
    publish_event(amqp, "intake", "intake.approved", approval_data(pid))
    wait_until(lambda: api.get(f"/api/v1/patients/{pid}/eligibility", headers=FRONT).json().get("eligible"))
    chair = ok(api.post("/api/v1/resources", json={"kind": "chair", "name": "Chair 1"}, headers=ADMIN), 201)
    doctor = ok(api.post("/api/v1/resources", json={"kind": "clinician", "name": "Dr A"}, headers=ADMIN), 201)
    plan = ok(api.post("/api/v1/plans", headers=CLIN, json={
        "patient_id": pid, "route": "iv_infusion", "indication": "treatment_resistant_depression"}), 201)

    def book(days_after_monday):
        return ok(api.post("/api/v1/appointments", headers=FRONT, json={
            "plan_id": plan["plan_id"], "starts_at": iso(clinic_time(MONDAY + timedelta(days=days_after_monday), 9)),
            "chair_id": chair["resource_id"], "clinician_id": doctor["resource_id"]}), 201)

    # Session one, given and discharged.
    first = book(0)
    move_to_today(databases.engine("sessions"), first["appointment_id"])
    sid = ok(api.post(f"/api/v1/appointments/{first['appointment_id']}/check-in", json=CHECKLIST, headers=CLIN),
             201)["session_id"]
    ok(api.post(f"/api/v1/sessions/{sid}/start", json={"lot_number": "KET-1"}, headers=CLIN))
    ok(api.post(f"/api/v1/sessions/{sid}/vitals", json=BASELINE, headers=CLIN), 201)
    ok(api.post(f"/api/v1/sessions/{sid}/completion", json=discharge(), headers=CLIN))

    # Nothing booked after it: the timer opens one task, the front desk sees it.
    opened = events.wait_for("front_desk_task.opened", timeout=15)["data"]
    assert (opened["kind"], opened["appointment_id"]) == ("no_next_booking", first["appointment_id"])
    listed = ok(api.get("/api/v1/front-desk-tasks", params={"kind": "no_next_booking"}, headers=FRONT))
    assert [t["task_id"] for t in listed["items"]] == [opened["task_id"]]

    # Booking the next session closes it.
    second = book(2)
    closed = events.wait_for("front_desk_task.closed", timeout=15)["data"]
    assert (closed["task_id"], closed["outcome"]) == (opened["task_id"], "booked")
    task = ok(api.get(f"/api/v1/front-desk-tasks/{opened['task_id']}", headers=FRONT))
    assert (task["state"], task["close_outcome"]) == ("closed", "booked")
    assert ok(api.get("/api/v1/front-desk-tasks", headers=FRONT))["total"] == 0

    # The patient replies YES to the pre-visit message: shown at check-in.
    received_at = iso(datetime.now(timezone.utc).replace(microsecond=0))
    publish_event(amqp, "notifications", "previsit.reply_received", {
        "reply_id": str(uuid.uuid4()), "appointment_id": second["appointment_id"], "patient_id": pid,
        "answer": "confirmed", "received_at": received_at})
    note = f"confirmed by patient reply at {received_at}"
    wait_until(lambda: api.get(f"/api/v1/appointments/{second['appointment_id']}", headers=FRONT)
               .json()["previsit"]["note"] == note)
    move_to_today(databases.engine("sessions"), second["appointment_id"])
    checked_in = ok(api.post(f"/api/v1/appointments/{second['appointment_id']}/check-in", json=CHECKLIST,
                             headers=FRONT), 201)
    assert checked_in["checklist"]["previsit"]["note"] == note

    # A NO to the next one's message: the front desk is asked to call.
    third = book(4)
    publish_event(amqp, "notifications", "previsit.reply_received", {
        "reply_id": str(uuid.uuid4()), "appointment_id": third["appointment_id"], "patient_id": pid,
        "answer": "declined", "received_at": iso(datetime.now(timezone.utc))})
    unconfirmed = wait_until(lambda: api.get("/api/v1/front-desk-tasks", params={"kind": "previsit_unconfirmed"},
                                             headers=FRONT).json()["items"])
    assert unconfirmed[0]["appointment_id"] == third["appointment_id"]

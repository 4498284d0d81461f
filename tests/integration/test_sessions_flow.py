"""Intake, sessions and the gateway together on the real broker and
PostgreSQL: an approval reaches sessions' read model as an event; a plan,
the six-session induction course, check-in, vitals with an alert on the bus,
and completion on the bus; two bookings racing for one chair; and bad
requests answered with a clear 4xx and nothing written."""
import time
from datetime import timedelta

import eventlet
import sqlalchemy as sa
from nameko.standalone.rpc import ClusterRpcProxy

from common.errors import Conflict
from tests.support.intake import PHQ9_MODERATE, approved_patient
from tests.support.sessions import BASELINE, CHECKLIST, clinic_monday, clinic_time, discharge, iso, move_to_today

FRONT = {"Authorization": "Bearer t-front"}
CLIN = {"Authorization": "Bearer t-clin"}
ADMIN = {"Authorization": "Bearer t-admin"}
MONDAY = clinic_monday()


def approved_in_sessions(rpc, api, given_name="Ana") -> str:
    patient = approved_patient(lambda method, *args: getattr(rpc.intake, method)(*args),
                               patient={"given_name": given_name})
    pid = patient["patient_id"]
    deadline = time.monotonic() + 10
    while True:
        answer = api.get(f"/api/v1/patients/{pid}/eligibility", headers=FRONT)
        if answer.status_code == 200 and answer.json()["eligible"]:
            return pid
        assert time.monotonic() < deadline, f"sessions never saw the approval: {answer.text}"
        eventlet.sleep(0.05)


def resources(api):
    def add(kind, name):
        answer = api.post("/api/v1/resources", json={"kind": kind, "name": name}, headers=ADMIN)
        assert answer.status_code == 201, answer.text
        return answer.json()["resource_id"]
    return add("chair", "Chair 1"), add("chair", "Chair 2"), add("clinician", "Dr A"), add("clinician", "Dr B")


def counts(databases, *tables):
    with databases.engine("sessions").connect() as connection:
        return {t: connection.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one() for t in tables}


def test_from_intake_approval_to_a_completed_session(clinic, events, databases):
    rpc, api = clinic
    events.listen("sessions")
    pid = approved_in_sessions(rpc, api)
    chair, _, clinician, _ = resources(api)

    plan = api.post("/api/v1/plans", json={"patient_id": pid, "route": "iv_infusion",
                                           "indication": "treatment_resistant_depression"}, headers=CLIN)
    assert plan.status_code == 201, plan.text
    plan_id = plan.json()["plan_id"]
    assert plan.json()["baseline_phq9"] == sum(PHQ9_MODERATE)   # from intake's approval event

    course = {"first_starts_at": iso(clinic_time(MONDAY, 9)), "chair_id": chair, "clinician_id": clinician}
    proposal = api.post(f"/api/v1/plans/{plan_id}/course/proposal", json=course, headers=FRONT).json()
    assert proposal["bookable"] and len(proposal["appointments"]) == 6
    booked = api.post(f"/api/v1/plans/{plan_id}/course", json=course,
                      headers={**FRONT, "Idempotency-Key": "course-42"})
    assert booked.status_code == 201, booked.text
    appointments = booked.json()["appointments"]
    assert len(appointments) == 6
    retried = api.post(f"/api/v1/plans/{plan_id}/course", json=course,
                       headers={**FRONT, "Idempotency-Key": "course-42"})
    assert retried.json() == booked.json()
    events.wait_for("appointment.scheduled", count=6)
    assert len(events.events("appointment.scheduled")) == 6
    day = api.get("/api/v1/schedule", params={"date": MONDAY.isoformat()}, headers=FRONT).json()
    assert [(i["patient_name"], i["chair"]) for i in day["items"]] == [("Ana Lopez", "Chair 1")]

    # Check-in belongs to the appointment's own day: a session days ahead is refused, naming its time.
    ahead = api.post(f"/api/v1/appointments/{appointments[1]['appointment_id']}/check-in", json=CHECKLIST,
                     headers=FRONT)
    assert ahead.status_code == 409 and ahead.headers["content-type"] == "application/problem+json", ahead.text
    assert "the appointment is at 09:00 on" in ahead.json()["detail"]
    assert counts(databases, "session_records") == {"session_records": 0}

    first = move_to_today(databases.engine("sessions"), appointments[0]["appointment_id"])
    checked_in = api.post(f"/api/v1/appointments/{first}/check-in", json=CHECKLIST, headers=FRONT)
    assert checked_in.status_code == 201, checked_in.text
    sid = checked_in.json()["session_id"]
    started = api.post(f"/api/v1/sessions/{sid}/start", json={"lot_number": "KET-2026-11"}, headers=CLIN)
    assert started.status_code == 200, started.text
    assert started.json()["dose_mg"] == 35.0   # 70 kg × 0.5 mg/kg

    alerting = api.post(f"/api/v1/sessions/{sid}/vitals", headers=CLIN,
                        json={"systolic": 150, "diastolic": 90, "heart_rate": 96, "spo2": 90, "respiratory_rate": 12})
    assert alerting.status_code == 201, alerting.text
    alert = events.wait_for("session.vitals_alert", timeout=2)
    assert alert["data"]["session_id"] == sid
    assert [a["code"] for a in alert["data"]["alerts"]] == ["spo2_low"]
    assert alert["data"]["clinician_id"] == clinician and alert["data"]["chair_id"] == chair

    assert api.post(f"/api/v1/sessions/{sid}/vitals", json=BASELINE, headers=CLIN).status_code == 201
    assert api.post(f"/api/v1/sessions/{sid}/observations", headers=CLIN,
                    json={"dissociation_scale": "cadss", "dissociation_score": 10}).status_code == 200
    done = api.post(f"/api/v1/sessions/{sid}/completion", json=discharge(), headers=CLIN)
    assert done.status_code == 200, done.text
    completed = events.wait_for("session.completed")["data"]
    assert (completed["session_id"], completed["plan_id"], completed["sequence"], completed["route"],
            completed["dose_mg"], completed["clinician_id"]) == (sid, plan_id, 1, "iv_infusion", 35.0, clinician)
    assert completed["date_of_service"] and completed["duration_minutes"] == 0
    signed = api.post(f"/api/v1/sessions/{sid}/signature", headers=CLIN)
    assert signed.status_code == 200, signed.text
    assert api.post(f"/api/v1/sessions/{sid}/vitals", json=BASELINE, headers=CLIN).status_code == 409


def test_two_bookings_racing_for_one_chair_give_one_success_and_one_conflict(clinic, clinic_config, databases):
    rpc, api = clinic
    first, second = approved_in_sessions(rpc, api, "Ana"), approved_in_sessions(rpc, api, "Bea")
    chair, _, dr_a, dr_b = resources(api)
    plans = [rpc.sessions.create_plan({"patient_id": pid, "route": "iv_infusion", "indication": "ptsd"})["plan_id"]
             for pid in (first, second)]

    def book(plan_id, clinician, starts_at):
        with ClusterRpcProxy(clinic_config, context_data={"actor": "frontdesk (front_desk)"}) as proxy:
            try:
                return proxy.sessions.book_appointment({"plan_id": plan_id, "starts_at": iso(starts_at),
                                                        "chair_id": chair, "clinician_id": clinician})
            except Conflict as exc:
                return exc

    # The same hour, then two hours that overlap by half (which must not
    # deadlock either).
    thursday = MONDAY + timedelta(days=3)
    for round_, (first_start, second_start) in enumerate([
            (clinic_time(MONDAY, 10), clinic_time(MONDAY, 10)),
            (clinic_time(thursday, 13), clinic_time(thursday, 13, 30))], start=1):
        racers = [eventlet.spawn(book, plans[0], dr_a, first_start), eventlet.spawn(book, plans[1], dr_b, second_start)]
        results = [racer.wait() for racer in racers]
        assert sorted(type(r).__name__ for r in results) == ["Conflict", "dict"], results
        assert counts(databases, "appointments")["appointments"] == round_
    with databases.engine("sessions").connect() as connection:
        held = connection.execute(sa.text(
            "SELECT count(*) FROM resource_bookings WHERE resource_id = :chair"), {"chair": chair}).scalar_one()
    assert held == 8   # two hours of 15-minute slots, each held once


BAD_REQUESTS = [  # method, path, headers, body, status, code
    ("post", "/api/v1/plans", CLIN, {"route": "iv_infusion", "indication": "ptsd"}, 422, "validation_failed"),
    ("post", "/api/v1/plans", FRONT, {"patient_id": "{pid}", "route": "iv_infusion", "indication": "ptsd"},
     403, "forbidden"),
    ("post", "/api/v1/plans", CLIN, {"patient_id": "{pid}", "route": "iv_infusion", "indication": "ptsd",
                                      "mg_per_kg": 40}, 422, "validation_failed"),
    ("post", "/api/v1/plans", {}, {"patient_id": "{pid}"}, 401, "unauthorized"),
    ("post", "/api/v1/appointments", FRONT, {"plan_id": "nope", "starts_at": "soon", "chair_id": "x",
                                             "clinician_id": "y"}, 422, "validation_failed"),
    ("post", "/api/v1/appointments", FRONT, {"plan_id": "00000000-0000-0000-0000-000000000000",
                                             "starts_at": "2030-01-07T15:00:00Z", "chair_id": "x",
                                             "clinician_id": "y"}, 404, "not_found"),
    ("post", "/api/v1/plans", CLIN, {"patient_id": "00000000-0000-0000-0000-000000000001", "route": "iv_infusion",
                                      "indication": "ptsd"}, 409, "conflict"),     # intake never approved
    ("post", "/api/v1/appointments", FRONT, {"plan_id": "{plan}", "starts_at": iso(clinic_time(MONDAY, 7)),
                                             "chair_id": "{chair}", "clinician_id": "{clinician}"},
     422, "validation_failed"),                                                       # before opening
    ("post", "/api/v1/appointments", FRONT, {"plan_id": "{plan}", "starts_at": iso(clinic_time(MONDAY, 9)),
                                             "chair_id": "{clinician}", "clinician_id": "{chair}"},
     422, "validation_failed"),                                                       # chair and clinician swapped
    ("post", "/api/v1/appointments", CLIN, {"plan_id": "{plan}", "starts_at": iso(clinic_time(MONDAY, 9)),
                                            "chair_id": "{chair}", "clinician_id": "{clinician}", "notes": "x"},
     422, "validation_failed"),                                                       # unknown field
    ("post", "/api/v1/appointments/00000000-0000-0000-0000-000000000000/check-in", FRONT, CHECKLIST, 404,
     "not_found"),
    ("post", "/api/v1/resources", FRONT, {"kind": "chair", "name": "Chair 9"}, 403, "forbidden"),
    ("get", "/api/v1/schedule", FRONT, None, 422, "validation_failed"),
    ("get", "/api/v1/schedule/free-slots?date=2030-01-07&route=teleport", FRONT, None, 422, "validation_failed"),
    ("post", "/api/v1/sessions/00000000-0000-0000-0000-000000000000/start", CLIN, {"lot_number": "L"}, 404,
     "not_found"),
    ("post", "/api/v1/sessions/00000000-0000-0000-0000-000000000000/vitals", FRONT, {"spo2": 90}, 403,
     "forbidden"),
]


def test_bad_requests_get_a_clear_4xx_and_write_nothing(clinic, databases):
    # One clinic for every case: starting three services per case would
    # cost more than the cases themselves.
    rpc, api = clinic
    pid = approved_in_sessions(rpc, api)
    chair, _, clinician, _ = resources(api)
    plan = rpc.sessions.create_plan({"patient_id": pid, "route": "iv_infusion", "indication": "ptsd"})["plan_id"]
    known = {"{pid}": pid, "{plan}": plan, "{chair}": chair, "{clinician}": clinician}
    tables = ("treatment_plans", "appointments", "resource_bookings", "session_records", "outbox")
    before = counts(databases, *tables)
    for method, path, headers, body, status, code in BAD_REQUESTS:
        if isinstance(body, dict):
            body = {k: known.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
        answer = getattr(api, method)(path, headers=headers, **({"json": body} if body is not None else {}))
        assert (answer.status_code, answer.json()["code"]) == (status, code), (method, path, answer.text)
        assert answer.headers["Content-Type"].startswith("application/problem+json")
        assert counts(databases, *tables) == before, (method, path)

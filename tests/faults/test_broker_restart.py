"""Issue 10.1: a broker restart is routine. While a front desk keeps
registering patients through the gateway, the clinic's own RabbitMQ node is
stopped and started, then killed -9 and started: every service process keeps
running (same PID), answers again once the broker is back, and every
patient it registered reaches billing and notifications exactly once."""
from __future__ import annotations

import json

import eventlet
import httpx
import pytest
import sqlalchemy as sa

from tests.support.ops import wait_until

SERVICES = ["intake", "sessions", "billing", "notifications", "gateway"]
FRONT_DESK = {"Authorization": "Bearer t-front"}
NEW_PATIENT = {"given_name": "Rae", "date_of_birth": "1979-05-06", "sex": "female", "phone": "+14155550100",
               "time_zone": "America/New_York", "primary_condition": "treatment_resistant_depression"}


class FrontDesk:
    """Registers one patient after another through the gateway until told
    to stop, noting every answer."""

    def __init__(self, clinic):
        self.clinic = clinic
        self.url = f"{clinic['gateway'].url}/api/v1/patients"
        self.answers: list[tuple[int | None, dict | str]] = []
        self.stopping = False
        self.thread = None

    def start(self) -> "FrontDesk":
        self.thread = eventlet.spawn(self._work)
        return self

    def _work(self) -> None:
        with httpx.Client(timeout=60) as client:
            while not self.stopping:
                body = {**NEW_PATIENT, "family_name": f"Restart{len(self.answers)}"}
                try:
                    answer = client.post(self.url, json=body, headers=FRONT_DESK)
                    self.answers.append((answer.status_code, answer.json()))
                except (httpx.HTTPError, ValueError) as exc:
                    self.answers.append((None, type(exc).__name__))
                eventlet.sleep(0.05)

    def accepted(self) -> list[str]:
        return [body["patient_id"] for status, body in self.answers if status == 201]

    def refused(self) -> list[tuple[int | None, object]]:
        return [(status, body) for status, body in self.answers if status != 201]

    def wait_for_more(self, how_many: int, timeout: float = 120.0) -> None:
        target = len(self.accepted()) + how_many

        def accepted_or_dead():
            assert self.clinic.exited() == {}, self.clinic.outputs()
            return len(self.accepted()) >= target

        wait_until(accepted_or_dead, timeout=timeout, message=f"{how_many} more registrations accepted")

    def stop(self) -> None:
        self.stopping = True
        self.thread.wait()


def registered_events(databases) -> dict[str, str]:
    """patient id -> the event id of its patient.registered, from intake's
    outbox; fails if a patient has two."""
    with databases.engine("intake").connect() as connection:
        rows = connection.execute(sa.text(
            "SELECT event_id, body, sent_at FROM outbox WHERE event_type = 'patient.registered'")).all()
    events: dict[str, str] = {}
    for event_id, body, _ in rows:
        patient_id = json.loads(body)["data"]["patient_id"]
        assert patient_id not in events, f"patient {patient_id} was registered twice"
        events[patient_id] = event_id
    return events


def unsent_events(databases) -> int:
    with databases.engine("intake").connect() as connection:
        return connection.execute(sa.text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")).scalar_one()


def applied(databases, service: str, handler: str) -> list[str]:
    with databases.engine(service).connect() as connection:
        return [row[0] for row in connection.execute(sa.text(
            "SELECT event_id FROM processed_events WHERE handler = :handler"), {"handler": handler})]


def intake_patients(databases) -> set[str]:
    with databases.engine("intake").connect() as connection:
        return {row[0] for row in connection.execute(sa.text("SELECT patient_id FROM patients"))}


def billing_patients(databases) -> list[str]:
    with databases.engine("billing").connect() as connection:
        return [row[0] for row in connection.execute(sa.text("SELECT patient_id FROM patients"))]


@pytest.mark.timeout(300)
def test_services_outlive_a_broker_restart_and_a_broker_crash(rabbit_node, clinic_processes, clean_databases):
    clinic = clinic_processes(rabbit_node.amqp_uri, SERVICES)
    pids = clinic.pids()
    desk = FrontDesk(clinic).start()
    try:
        desk.wait_for_more(5)

        rabbit_node.stop()  # a routine restart: the node says goodbye to its clients
        eventlet.sleep(3)
        assert clinic.exited() == {}, clinic.outputs()
        rabbit_node.start()
        desk.wait_for_more(5)

        rabbit_node.kill()  # a crash: connections just drop
        eventlet.sleep(3)
        assert clinic.exited() == {}, clinic.outputs()
        rabbit_node.start()
        desk.wait_for_more(5)
    finally:
        desk.stop()

    assert clinic.exited() == {}, clinic.outputs()
    assert clinic.pids() == pids

    # Nothing lost, nothing doubled: every patient intake committed (the
    # accepted ones and any whose answer was lost in the outage) has one
    # event, and billing and notifications each applied it once.
    wait_until(lambda: unsent_events(clean_databases) == 0, timeout=120, message="intake's outbox drained")
    events = registered_events(clean_databases)
    patients = intake_patients(clean_databases)
    assert set(desk.accepted()) <= patients
    assert set(events) == patients
    for service, handler in (("billing", "billing.on_patient_registered"),
                             ("notifications", "notifications.on_patient_registered")):
        wait_until(lambda: set(applied(clean_databases, service, handler)) >= set(events.values()),
                   timeout=120, message=f"{handler} caught up")
        assert sorted(applied(clean_databases, service, handler)) == sorted(events.values())
    assert sorted(billing_patients(clean_databases)) == sorted(patients)

    # While the broker was away the gateway said so.
    assert {status for status, _ in desk.refused()} <= {503}, desk.refused()[:5]

"""The gateway when nothing answers: the broker gone, no service running,
a service that does not take its requests. Every read and write is a 503
problem+json with Retry-After, never a 500, and a request the gateway gave
up on is never carried out later."""
from __future__ import annotations

import time

import eventlet
import httpx
import pytest
import sqlalchemy as sa

from gateway.service import GatewayService
from services.intake.service import IntakeService
from tests.conftest import web_address
from tests.faults.conftest import through
from tests.support.intake import PATIENT

FRONT = {"Authorization": "Bearer t-front"}


def assert_unavailable(answer):
    assert answer.status_code == 503, answer.text
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert int(answer.headers["Retry-After"]) > 0
    assert answer.json()["code"] == "service_unavailable"


def reads_and_writes(http, family_name: str):
    yield http.get("/api/v1/patients", params={"name": "lopez"}, headers=FRONT)
    yield http.get("/api/v1/patients/00000000-0000-4000-8000-000000000000", headers=FRONT)
    yield http.post("/api/v1/patients", json={**PATIENT, "family_name": family_name}, headers=FRONT)


def test_with_the_broker_gone_the_gateway_answers_503_on_reads_and_writes(start_service, rabbit_config, proxy_to):
    start_service(IntakeService)
    broker = proxy_to(rabbit_config["AMQP_URI"], 5672)
    gateway = start_service(GatewayService, AMQP_URI=through(rabbit_config["AMQP_URI"], broker))
    with httpx.Client(base_url=web_address(gateway), timeout=60) as http:
        assert http.get("/api/v1/patients", headers=FRONT).status_code == 200
        broker.refuse()
        broker.cut()
        for answer in reads_and_writes(http, "Brokerless"):
            assert_unavailable(answer)
        assert_unavailable(http.get("/api/v1/stream", headers=FRONT, params={"max_seconds": "1"}))
        assert_unavailable(http.post("/api/v1/stream/tickets", headers=FRONT))
        broker.forward()
        assert answered_again(http), "the gateway did not serve again once the broker was back"


def answered_again(http, within: float = 60) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if http.get("/api/v1/patients", headers=FRONT).status_code == 200:
            return True
        eventlet.sleep(1)
    return False


def test_with_no_service_running_the_gateway_answers_503(start_service):
    gateway = start_service(GatewayService)
    with httpx.Client(base_url=web_address(gateway), timeout=60) as http:
        for answer in reads_and_writes(http, "Nobody"):
            assert_unavailable(answer)


def test_a_request_no_replica_took_in_time_is_never_carried_out_later(start_service, container_factory,
                                                                      clinic_config, databases):
    # Intake declares its queue, then stops: requests queue up unread, as
    # while every replica restarts or a backlog builds.
    timeouts = {"GATEWAY_RPC_TIMEOUT": 3, "DATABASE_CONNECT_TIMEOUT": 1, "DATABASE_STATEMENT_TIMEOUT": 1}
    intake = start_service(IntakeService, **timeouts)
    intake.stop()
    gateway = start_service(GatewayService, **timeouts)
    with httpx.Client(base_url=web_address(gateway), timeout=60) as http:
        assert_unavailable(http.post("/api/v1/patients", json={**PATIENT, "family_name": "Queued"},
                                     headers=FRONT))
    start_service(IntakeService, **timeouts)
    eventlet.sleep(2)
    with databases.engine("intake").connect() as connection:
        queued = connection.execute(sa.text("SELECT count(*) FROM patients WHERE family_name = 'Queued'"))
        assert queued.scalar_one() == 0


def test_the_api_document_tells_clients_when_to_try_again_after_a_503():
    from gateway.openapi import document

    for path in document()["paths"].values():
        for operation in path.values():
            assert "Retry-After" in operation["responses"]["503"]["headers"]

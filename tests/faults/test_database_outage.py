"""A service whose database is blackholed, hung or gone: the caller is told
503 (``ServiceUnavailable``) within the service's database timeouts, nothing
it was told failed is written later, and the same process serves again once
the database is back."""
from __future__ import annotations

import time

import eventlet
import httpx
import pytest
import sqlalchemy as sa
from nameko.standalone.rpc import ServiceRpcProxy

from common.errors import ServiceUnavailable
from gateway.http import RPC_TIMEOUT_SECONDS
from gateway.service import GatewayService
from services.intake.service import IntakeService
from tests.conftest import web_address
from tests.faults.conftest import FAST_DATABASE_TIMEOUTS, through
from tests.support.intake import PATIENT

FRONT = {"Authorization": "Bearer t-front"}


@pytest.fixture
def clinic(start_service, clean_databases, proxy_to):
    """Intake reaching its database through a proxy, and the gateway."""
    url = clean_databases["intake"]
    proxy = proxy_to(url, 5432)
    intake = start_service(IntakeService, DATABASE_URLS={"intake": through(url, proxy)}, **FAST_DATABASE_TIMEOUTS)
    gateway = start_service(GatewayService)
    with httpx.Client(base_url=web_address(gateway), timeout=RPC_TIMEOUT_SECONDS + 15) as http:
        yield http, proxy, intake


def register(http, family_name: str):
    return http.post("/api/v1/patients", json={**PATIENT, "family_name": family_name}, headers=FRONT)


def patients_named(databases, family_name: str) -> int:
    with databases.engine("intake").connect() as connection:
        return connection.execute(sa.text("SELECT count(*) FROM patients WHERE family_name = :name"),
                                  {"name": family_name}).scalar_one()


def registrations_in_outbox(databases) -> int:
    with databases.engine("intake").connect() as connection:
        return connection.execute(sa.text(
            "SELECT count(*) FROM outbox WHERE event_type = 'patient.registered'")).scalar_one()


def assert_unavailable(answer):
    assert answer.status_code == 503, answer.text
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert int(answer.headers["Retry-After"]) > 0
    problem = answer.json()
    assert problem["code"] == "service_unavailable" and problem["status"] == 503
    assert "Traceback" not in answer.text
    return problem


def test_a_registration_against_a_blackholed_database_is_refused_and_never_lands_later(clinic, databases):
    http, proxy, intake = clinic
    assert register(http, "Before").status_code == 201  # a pooled connection exists now
    proxy.blackhole()

    started = time.monotonic()
    answer = register(http, "Blackholed")
    waited = time.monotonic() - started
    problem = assert_unavailable(answer)
    assert "nothing was saved" in problem["detail"]
    # The service gave up on its own, well before the gateway would have.
    assert waited < RPC_TIMEOUT_SECONDS / 2
    assert_unavailable(http.get("/api/v1/patients", params={"name": "before"}, headers=FRONT))

    proxy.forward()
    # Whatever the service had sent into the blackhole reaches PostgreSQL now.
    assert proxy.settled()
    assert register(http, "After").status_code == 201  # the same process, no restart
    found = http.get("/api/v1/patients", params={"name": "after"}, headers=FRONT)
    assert found.status_code == 200 and len(found.json()["items"]) == 1
    eventlet.sleep(0.5)
    assert patients_named(databases, "Blackholed") == 0
    assert registrations_in_outbox(databases) == 2


def test_a_statement_held_up_in_a_hung_database_is_cancelled_and_rolled_back(clinic, databases):
    http, proxy, intake = clinic
    assert register(http, "Before").status_code == 201
    # A lock nobody releases: the database is up and answers nothing.
    with databases.engine("intake").connect() as holder:
        holder.execute(sa.text("LOCK TABLE patients IN ACCESS EXCLUSIVE MODE"))
        started = time.monotonic()
        answer = register(http, "Stuck")
        waited = time.monotonic() - started
        assert_unavailable(answer)
        assert waited < RPC_TIMEOUT_SECONDS / 2
        holder.rollback()
    eventlet.sleep(0.5)
    assert patients_named(databases, "Stuck") == 0
    assert register(http, "After").status_code == 201


def test_an_rpc_caller_is_told_service_unavailable_while_the_database_refuses(clinic, clinic_config, databases):
    http, proxy, intake = clinic
    proxy.refuse()
    proxy.cut()
    with ServiceRpcProxy("intake", clinic_config) as rpc:
        with pytest.raises(ServiceUnavailable) as caught:
            rpc.register_patient({**PATIENT, "family_name": "Refused"})
        assert caught.value.http_status == 503
        assert_unavailable(register(http, "Refused"))

        proxy.forward()
        assert rpc.register_patient({**PATIENT, "family_name": "Returned"})["family_name"] == "Returned"
    assert patients_named(databases, "Refused") == 0

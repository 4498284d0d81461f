"""Ready-made event data for driving billing without the producers, and an
RPC caller for a running billing container."""
from __future__ import annotations

import uuid

import eventlet
import sqlalchemy as sa
from nameko.standalone.rpc import ClusterRpcProxy

from tests.support.calls import as_staff
from tests.support.events import publish_event


def new_id() -> str:
    return str(uuid.uuid4())


def completed_session(patient_id: str, **overrides) -> dict:
    """``session.completed`` data as docs/events.md lists it."""
    data = {
        "session_id": new_id(), "appointment_id": new_id(), "plan_id": new_id(), "patient_id": patient_id,
        "route": "iv_infusion", "drug": "ketamine", "dose_mg": 35.0,
        "started_at": "2026-11-20T15:00:00Z", "ended_at": "2026-11-20T15:40:00Z", "duration_minutes": 40,
        "date_of_service": "2026-11-20", "clinician_id": "dr.who", "sequence": 1,
    }
    return {**data, **overrides}


def registered_patient(patient_id: str, **overrides) -> dict:
    return {"patient_id": patient_id, "mrn": "MRN0000042", "given_name": "Ana", "family_name": "Lopez",
            "date_of_birth": "1980-02-03", "sex": "female", "phone": "+14155550123", "email": "ana@example.com",
            "time_zone": "America/Los_Angeles", "diagnosis_codes": ["F33.2"], **overrides}


def rpc_caller(container, actor: str = "biller (billing)"):
    return as_staff(container, actor)


def concurrently(config, method: str, calls: list[tuple], actor: str = "biller (billing)",
                 service: str = "billing") -> list:
    """Make the calls over real RPC, all in flight at once; returns each
    result, or the exception it raised. (entrypoint_hook cannot: concurrent
    hooks on one method all receive the first worker's result.)"""
    with ClusterRpcProxy(config, context_data={"actor": actor}) as cluster:
        pending = [getattr(getattr(cluster, service), method).call_async(*args) for args in calls]
        results = []
        for reply in pending:
            try:
                results.append(reply.result())
            except Exception as exc:  # noqa: BLE001 - handed back to the test
                results.append(exc)
        return results


def publish(config, producer, event_type, data, **kwargs) -> dict:
    return publish_event(config["AMQP_URI"], producer, event_type, data, **kwargs)


def wait_until(check, timeout: float = 10.0, interval: float = 0.05):
    """Poll ``check`` until it returns something truthy (then return it)."""
    waited = 0.0
    while True:
        result = check()
        if result:
            return result
        if waited >= timeout:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        eventlet.sleep(interval)
        waited += interval


def scalar(databases, sql: str, **params):
    with databases.engine("billing").connect() as connection:
        return connection.execute(sa.text(sql), params).scalar_one()

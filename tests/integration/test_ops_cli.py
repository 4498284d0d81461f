"""``clinic queues`` and ``clinic outbox`` against the real broker and
PostgreSQL, as an operator runs them (configuration from the environment)."""
import json
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from kombu import Connection, Queue
from nameko.standalone.events import get_event_exchange

import cli
from services.intake.service import IntakeService
from tests.support.events import publish_event
from tests.support.ops import wait_until

QUEUE = "evt-intake-patient.registered--ops_probe.on_patient_registered"


@pytest.fixture
def operator_env(rabbit_config, databases, monkeypatch):
    monkeypatch.setenv("AMQP_URI", rabbit_config["AMQP_URI"])
    monkeypatch.setenv("INTAKE_DATABASE_URL", databases["intake"])
    monkeypatch.delenv("RABBITMQ_MANAGEMENT_URL", raising=False)
    return rabbit_config


def queue_rows(capsys, *argv):
    assert cli.main(["queues", "--json", *argv]) == cli.EXIT_OK
    report = json.loads(capsys.readouterr().out)
    return report["source"], {row["queue"]: row for row in report["queues"]}


def test_queue_depths_and_consumers_from_the_management_api(start_service, operator_env, capsys):
    start_service(IntakeService)
    # A queue with a backlog and nobody consuming: what an operator must notice.
    with Connection(operator_env["AMQP_URI"]) as connection:
        Queue(QUEUE, exchange=get_event_exchange("intake", {}), routing_key="patient.registered",
              durable=True)(connection.default_channel).declare()
    for n in range(3):
        publish_event(operator_env["AMQP_URI"], "intake", "patient.registered", {"patient_id": f"p-{n}"})

    def settled():
        # The management plugin refreshes its statistics every few seconds.
        source, rows = queue_rows(capsys)
        assert source == "management API"
        if rows.get("rpc-intake", {}).get("consumers") == 1 and rows.get(QUEUE, {}).get("ready") == 3:
            return rows

    rows = wait_until(settled, timeout=20, interval=0.5, message="management statistics")
    assert (rows[QUEUE]["consumers"], rows[QUEUE]["unacked"]) == (0, 0)

    assert cli.main(["queues"]) == cli.EXIT_OK
    table = capsys.readouterr().out
    assert "(from management API)" in table
    assert [line for line in table.splitlines() if line.startswith(QUEUE)][0].endswith("messages but no consumer")


def test_queues_fall_back_to_passive_declares_without_the_management_api(start_service, operator_env, capsys):
    from tests.support.net import free_port

    start_service(IntakeService)
    source, rows = queue_rows(capsys, "--management-url", f"http://127.0.0.1:{free_port()}")
    assert source.startswith("AMQP")
    assert rows["rpc-intake"]["consumers"] == 1 and rows["rpc-intake"]["unacked"] is None
    assert "clinic.dead-letters" in rows


def test_outbox_backlog_per_service_database(operator_env, databases, capsys):
    engine = databases.engine("intake")
    old = datetime.now(timezone.utc) - timedelta(minutes=10)
    with engine.begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO outbox (event_id, event_type, body, created_at, attempts, last_error) "
            "VALUES ('e-stuck', 'patient.registered', '{}', :at, 4, 'ConnectionRefusedError: [Errno 111]')"),
            {"at": old})
    assert cli.main(["outbox", "intake", "--json"]) == cli.EXIT_OK
    state = json.loads(capsys.readouterr().out)["intake"]
    assert (state["pending"], state["failed_attempts"]) == (1, 1)
    assert 590 < state["oldest_seconds"] < 900
    assert state["last_error"].startswith("ConnectionRefusedError")
    # A monitoring check: pending events older than five minutes need a look.
    assert cli.main(["outbox", "intake", "--max-age", "300"]) == cli.EXIT_ATTENTION

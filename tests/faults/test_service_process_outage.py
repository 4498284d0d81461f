"""The container's own process (``clinic run intake``, configured only by
the environment, as compose does) through a database blackhole: callers are
told ServiceUnavailable, the process stays up and serves again when the
database returns, and its log names no patient."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from nameko.standalone.rpc import ServiceRpcProxy

from common.errors import ServiceUnavailable
from tests.faults.conftest import through
from tests.support.intake import PATIENT
from tests.support.net import free_port
from tests.support.ops import CLINIC, ClinicProcess, container_command, http_status, wait_until


@pytest.fixture
def intake_process(rabbit_config, clean_databases, proxy_to, tmp_path):
    url = clean_databases["intake"]
    proxy = proxy_to(url, 5432)
    command = container_command("intake")
    env = {"AMQP_URI": rabbit_config["AMQP_URI"], "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
           "LOG_FORMAT": "json", "INTAKE_DATABASE_URL": through(url, proxy),
           "DATABASE_CONNECT_TIMEOUT": "1", "DATABASE_STATEMENT_TIMEOUT": "2"}
    process = ClinicProcess([str(CLINIC), *command[1:]], env, tmp_path / "stdout.log").start()
    yield process, proxy
    process.stop()


def test_the_service_process_outlives_a_blackholed_database_and_serves_again(intake_process, rabbit_config,
                                                                           databases):
    process, proxy = intake_process
    pid = process.process.pid
    with ServiceRpcProxy("intake", rabbit_config, timeout=60) as intake:
        intake.register_patient({**PATIENT, "family_name": "Before"})
        proxy.blackhole()
        with pytest.raises(ServiceUnavailable):
            intake.register_patient({**PATIENT, "family_name": "Blackholed"})
        wait_until(lambda: http_status(f"{process.url}/ready") == 503, timeout=30, message="not ready")

        proxy.forward()
        assert proxy.settled()
        wait_until(lambda: http_status(f"{process.url}/ready") == 200, timeout=30, message="ready again")
        assert intake.register_patient({**PATIENT, "family_name": "After"})["family_name"] == "After"
    assert process.process.poll() is None and process.process.pid == pid
    with databases.engine("intake").connect() as connection:
        names = connection.execute(sa.text("SELECT family_name FROM patients ORDER BY family_name")).scalars().all()
    assert names == ["After", "Before"]
    log = process.output()
    assert "ServiceUnavailable" in log
    assert "Blackholed" not in log and PATIENT["phone"] not in log

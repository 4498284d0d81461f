"""``clinic run all`` as an operator starts it beside another clinic: on
ports of its own (CLINIC_PORTS), with JSON logs. The gateway's aggregate
health asks the services where the same port map put them, and every line
the runner and its services write is one JSON object."""
import os
import signal
import subprocess

import httpx
import pytest

from cli.services import SERVICES, has_database
from common.config import PROJECT_ROOT
from common.rabbitmq import throwaway_vhost
from tests.support.net import free_port
from tests.support.ops import CLINIC, http_status, json_lines, wait_until


@pytest.fixture(scope="module")
def moved_clinic(request, tmp_path_factory):
    data = tmp_path_factory.mktemp("moved-clinic")
    ports = {name: free_port() for name in SERVICES}
    with throwaway_vhost(request.config.getoption("RABBIT_AMQP_URI"), "test-run-all") as amqp_uri:
        env = {key: value for key, value in os.environ.items()
               if not key.endswith(("_HEALTH_URL", "_DATABASE_URL")) and key not in ("WEB_SERVER_ADDRESS",)}
        env.update({
            "AMQP_URI": amqp_uri, "LOG_FORMAT": "json", "LOG_LEVEL": "INFO", "PYTHONWARNINGS": "ignore",
            "CLINIC_PORTS": ",".join(f"{name}={port}" for name, port in ports.items()),
            **{f"{name.upper()}_DATABASE_URL": f"sqlite:///{data / name}.sqlite3"
               for name in SERVICES if has_database(name)},
        })
        log_path = data / "clinic.log"
        with open(log_path, "wb") as log:
            runner = subprocess.Popen([str(CLINIC), "run", "all"], env=env, cwd=PROJECT_ROOT,
                                      stdout=log, stderr=subprocess.STDOUT)
        gateway = f"http://127.0.0.1:{ports['gateway']}"

        def up():
            assert runner.poll() is None, log_path.read_text()[-3000:]
            return all(http_status(f"http://127.0.0.1:{port}/{'health' if name == 'gateway' else 'ready'}") == 200
                       for name, port in ports.items())

        try:
            # Each process on its own port first; then the gateway is asked.
            wait_until(up, timeout=90, interval=1, message="every service ready on its moved port")
            health = httpx.get(f"{gateway}/api/v1/health", timeout=10).json()
            for _ in range(3):  # what a monitor polling the aggregate would cause
                httpx.get(f"{gateway}/api/v1/health", timeout=10)
        finally:
            runner.send_signal(signal.SIGTERM)
            code = runner.wait(timeout=60)
        yield {"health": health, "ports": ports, "exit": code, "output": log_path.read_text()}


def test_the_aggregate_health_follows_the_moved_ports(moved_clinic):
    assert moved_clinic["health"] == {"status": "ok", "services": {
        "intake": "ready", "sessions": "ready", "billing": "ready", "notifications": "ready"}}


def test_every_line_is_json_the_runner_own_included(moved_clinic):
    lines = json_lines(moved_clinic["output"])  # fails on a line that is not one JSON object
    runner = [line["message"] for line in lines if line["logger"] == "clinic.run"]
    assert {f"migrated {name}" for name in SERVICES if has_database(name)} <= set(runner)
    gateway_port = moved_clinic["ports"]["gateway"]
    assert any(f"gateway listening on http://127.0.0.1:{gateway_port}/api/v1/" in line for line in runner)
    assert {line.get("service") for line in lines if line["logger"] == "nameko.runners"} == set(SERVICES)


def test_health_probes_do_not_log_at_info(moved_clinic):
    lines = json_lines(moved_clinic["output"])
    assert not [line for line in lines if line["logger"].startswith("httpx")]
    assert not [line for line in lines if line.get("entrypoint") in ("services_health", "ready", "health")
                and line["level"] == "INFO"]


def test_stopping_the_runner_stops_the_clinic_cleanly(moved_clinic):
    assert moved_clinic["exit"] == 0
    lines = json_lines(moved_clinic["output"])
    assert {line.get("service") for line in lines if line["message"].startswith("stopping services")} == \
        set(SERVICES)


def test_a_database_that_is_down_is_one_json_line_and_exit_4(request):
    env = {**os.environ, "LOG_FORMAT": "json", "AMQP_URI": request.config.getoption("RABBIT_AMQP_URI"),
           "INTAKE_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/intake"}
    finished = subprocess.run([str(CLINIC), "run", "intake"], env=env, cwd=PROJECT_ROOT,
                              capture_output=True, text=True, timeout=60)
    assert finished.returncode == 4
    lines = json_lines(finished.stdout + finished.stderr)
    assert [(line["level"], line["service"]) for line in lines] == [("ERROR", "intake")]
    assert lines[0]["message"].startswith("a database is not reachable, nothing started")

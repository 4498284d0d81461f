"""A message that kills its consumer's process (SIGKILL mid-message, so no
exception and no ack) is redelivered to the restarted process only
QUEUE_DELIVERY_LIMIT times: then it is in the dead-letter queue, with the
reason, and the service moves on. A quorum queue's broker counts the
deliveries; on a classic queue the service counts redeliveries in a header. The
test plays the orchestrator that restarts the dead process, a bounded
number of times."""
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa
import yaml

import cli
from common.config import PROJECT_ROOT
from common.deadletter_operations import list_dead_letters
from common.outbox import plumbing_metadata
from services.sessions.events import SessionCompleted
from tests.support.events import example_data, publish_event
from tests.support.net import free_port
from tests.support.ops import wait_until

QUEUE = "evt-sessions-session.completed--poison_probe.on_session_completed"
DELIVERY_LIMIT = 2


class Supervisor:
    """Starts the service process again whenever it dies, like a container
    runtime with ``restart: unless-stopped``, and counts the deaths."""

    def __init__(self, config_path, env, log_path):
        self.command = [sys.executable, "-m", "nameko", "run", "--config", str(config_path),
                        "tests.faults.poison_service:PoisonProbe"]
        self.env, self.log_path = env, log_path
        self.process = None
        self.deaths = 0

    def start(self):
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.command, cwd=PROJECT_ROOT, env=self.env,
                                        stdout=self.log, stderr=subprocess.STDOUT)

    def keep_alive(self):
        if self.process.poll() is not None:
            self.deaths += 1
            self.log.close()
            if self.deaths > DELIVERY_LIMIT + 5:
                raise AssertionError(f"killed {self.deaths} times: the delivery limit did not stop it")
            self.start()

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@pytest.fixture(params=["quorum", "classic"])
def supervisor(request, tmp_path, rabbit_config):
    database = f"sqlite:///{tmp_path}/poison_probe.sqlite3"
    plumbing_metadata.create_all(sa.create_engine(database))
    config = {
        "AMQP_URI": rabbit_config["AMQP_URI"], "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
        "DATABASE_URLS": {"poison_probe": database}, "QUEUE_TYPE": request.param,
        "QUEUE_DELIVERY_LIMIT": DELIVERY_LIMIT, "OUTBOX_RELAY_INTERVAL": 1,
    }
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    applied = tmp_path / "applied.txt"
    applied.touch()
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PROJECT_ROOT), "POISON_PROBE_APPLIED": str(applied),
           "PYTHONWARNINGS": "ignore"}
    process = Supervisor(config_path, env, tmp_path / "service.log")
    process.start()
    yield process, applied
    process.stop()


def consumers(rabbit_manager, vhost):
    try:
        return rabbit_manager.get_queue(vhost, QUEUE).get("consumers", 0)
    except Exception:  # not declared yet
        return 0


def test_a_message_that_kills_its_process_is_dead_lettered_after_the_delivery_limit(
        supervisor, rabbit_config, rabbit_manager, monkeypatch, capsys):
    process, applied = supervisor
    amqp_uri, vhost = rabbit_config["AMQP_URI"], rabbit_config["vhost"]
    wait_until(lambda: consumers(rabbit_manager, vhost), timeout=60, message="the service consuming")

    poison = publish_event(amqp_uri, "sessions", "session.completed",
                           example_data(SessionCompleted, session_id="poison-1"))

    def dead_lettered():
        process.keep_alive()
        return list_dead_letters(amqp_uri)

    [letter] = wait_until(dead_lettered, timeout=120, interval=0.25, message="the poison dead-lettered")
    assert letter["reason"] == "delivery-limit"
    assert letter["event_id"] == poison["event_id"]
    assert letter["handler"] == "poison_probe.on_session_completed" and letter["queue"] == QUEUE
    # Delivered once, then redelivered DELIVERY_LIMIT times, killing the process each time.
    assert process.deaths == DELIVERY_LIMIT + 1

    # The service moves on.
    good = publish_event(amqp_uri, "sessions", "session.completed", example_data(SessionCompleted, session_id="s-2"))

    def applied_good():
        process.keep_alive()
        return good["event_id"] in applied.read_text()

    wait_until(applied_good, timeout=60, interval=0.25, message="the next event applied")
    assert process.deaths == DELIVERY_LIMIT + 1

    # An operator sees it with the broker's reason.
    monkeypatch.setenv("AMQP_URI", amqp_uri)
    capsys.readouterr()
    assert cli.main(["dead-letters", "list"]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "delivery-limit" in out and poison["event_id"] in out

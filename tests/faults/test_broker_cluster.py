"""Issue 10.7: the clinic on a three-node RabbitMQ cluster with quorum
queues. A burst of session completions flows to billing; halfway through,
the node leading billing's ``session.completed`` queue is killed. The queue
elects a new leader on a surviving node, billing moves its connection there
(AMQP_URI names every node), and every session is charged exactly once."""
from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import eventlet
import httpx
import pytest
import sqlalchemy as sa
import yaml

from common.config import PROJECT_ROOT
from common.events import envelope
from common.handlers import handler_queue_name
from common.outbox import EventPublisher
from tests.support.billing import completed_session, new_id
from tests.support.ops import wait_until

SESSIONS = 200
KILL_AFTER = 80
BILLING_QUEUE = handler_queue_name("sessions", "session.completed", "billing", "on_session_completed")


def publish_until_confirmed(publisher: EventPublisher, body: dict, timeout: float = 60.0) -> None:
    """What the sessions outbox relay does: publish with confirms, and try
    again (on whichever node answers) until the broker confirms."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            publisher.publish(body["type"], body)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            eventlet.sleep(0.5)


def staff_get(url: str) -> int | None:
    try:
        return httpx.get(url, headers={"Authorization": "Bearer t-bill"}, timeout=40).status_code
    except httpx.HTTPError:
        return None


def queue_type_of(node, queue: str) -> str:
    answer = node.ctl("list_queues", "--no-table-headers", "--quiet", "name", "type")
    return dict(line.split()[:2] for line in answer.stdout.splitlines() if line.strip()).get(queue, "")


@pytest.mark.timeout(420)  # a loaded two-core machine runs three broker nodes slowly
def test_a_burst_survives_the_loss_of_the_node_leading_billings_queue(
        rabbit_cluster_factory, clinic_processes, clean_databases):
    cluster = rabbit_cluster_factory(3).form()
    clinic = clinic_processes(cluster.failover_uri(), ["billing", "gateway"], QUEUE_TYPE="quorum")
    pids = clinic.pids()
    leader = cluster.queue_leader(BILLING_QUEUE)
    assert queue_type_of(leader, BILLING_QUEUE) == "quorum"
    fee_schedule = f"{clinic['gateway'].url}/api/v1/fee-schedule"
    assert staff_get(fee_schedule) == 200  # the gateway asks billing by RPC

    # The producer lists the nodes in the same order as billing (as every
    # container of docker-compose.cluster.yml does): it loses its node too.
    assert leader is cluster.first
    publisher = EventPublisher(cluster.failover_uri(), "sessions")
    bodies = [envelope("session.completed", completed_session(new_id()), producer="sessions")
              for _ in range(SESSIONS)]
    for number, body in enumerate(bodies):
        if number == KILL_AFTER:
            leader.kill()
        publish_until_confirmed(publisher, body)

    engine = clean_databases.engine("billing")

    def charged_sessions() -> int:
        with engine.connect() as connection:
            return connection.execute(sa.text("SELECT count(DISTINCT session_id) FROM charges")).scalar_one()

    wait_until(lambda: charged_sessions() >= SESSIONS, timeout=240, message="every session charged")
    eventlet.sleep(2)  # anything redelivered late would show up as a second charge
    with engine.connect() as connection:
        per_session = connection.execute(sa.text(
            "SELECT session_id, array_agg(code ORDER BY code) FROM charges GROUP BY session_id")).all()
        handled = connection.execute(sa.text(
            "SELECT count(*) FROM processed_events WHERE handler = 'billing.on_session_completed'")).scalar_one()
    assert {row[0] for row in per_session} == {body["data"]["session_id"] for body in bodies}
    assert all(codes == ["96365", "J3490"] for _, codes in per_session)
    assert handled == SESSIONS

    new_leader = cluster.queue_leader(BILLING_QUEUE)
    assert new_leader is not leader and new_leader.running
    # The gateway lost its reply queue with the node and made a new one.
    wait_until(lambda: staff_get(fee_schedule) == 200, timeout=60, message="the gateway answering again")
    assert clinic.exited() == {} and clinic.pids() == pids, clinic.outputs()
    # It said it lost the broker, without the password of any node.
    output = clinic["billing"].output()
    assert "Error connecting to broker" in output and ":guest@" not in output


DOCKER_COMPOSE = shutil.which("docker-compose")
CLUSTER_COMPOSE_FILE = PROJECT_ROOT / "docker-compose.cluster.yml"
CLUSTER_CONF = PROJECT_ROOT / "docker" / "rabbitmq" / "cluster.conf"
CLINIC_CONTAINERS = ["intake", "sessions", "billing", "notifications", "gateway"]


def merged_compose(env_file: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [DOCKER_COMPOSE, "--project-directory", str(PROJECT_ROOT), "-f", str(PROJECT_ROOT / "docker-compose.yml"),
         "-f", str(CLUSTER_COMPOSE_FILE), "--env-file", str(env_file), "config"],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, timeout=60)


@pytest.mark.skipif(DOCKER_COMPOSE is None, reason="the docker-compose binary is not installed")
def test_the_cluster_compose_file_runs_three_clustered_nodes_and_every_service_knows_them_all():
    result = merged_compose(PROJECT_ROOT / ".env.example")
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    nodes = sorted(name for name in services if name.startswith("rabbitmq"))
    assert nodes == ["rabbitmq", "rabbitmq-2", "rabbitmq-3"]

    # The nodes the config file clusters are these containers' node names.
    listed = set(re.findall(r"^cluster_formation\.classic_config\.nodes\.\d+ = (\S+)$", CLUSTER_CONF.read_text(), re.M))
    assert listed == {f"rabbit@{services[node]['hostname']}" for node in nodes}
    cookies = {services[node]["environment"]["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] for node in nodes}
    assert len(cookies) == 1
    for node in nodes:
        mounts = [volume if isinstance(volume, str) else f"{volume['source']}:{volume['target']}"
                  for volume in services[node]["volumes"]]
        assert any(mount.endswith(":/etc/rabbitmq/conf.d/20-cluster.conf:ro") or
                   mount.endswith(":/etc/rabbitmq/conf.d/20-cluster.conf") for mount in mounts), mounts
    data = [next(v for v in services[node]["volumes"] if "/var/lib/rabbitmq" in str(v)) for node in nodes]
    assert len({str(volume) for volume in data}) == 3  # a data volume each

    for container in CLINIC_CONTAINERS:
        environment = services[container]["environment"]
        hosts = [urlsplit(uri).hostname for uri in environment["AMQP_URI"].split(";")]
        assert hosts == nodes, container
        assert environment["QUEUE_TYPE"] == "quorum"


@pytest.mark.skipif(DOCKER_COMPOSE is None, reason="the docker-compose binary is not installed")
def test_the_cluster_compose_file_refuses_to_start_without_the_erlang_cookie(tmp_path):
    env_file = tmp_path / "no-cookie.env"
    env_file.write_text("\n".join(line for line in (PROJECT_ROOT / ".env.example").read_text().splitlines()
                                  if not line.startswith("RABBITMQ_ERLANG_COOKIE")))
    result = merged_compose(env_file)
    assert result.returncode != 0 and "RABBITMQ_ERLANG_COOKIE" in result.stderr

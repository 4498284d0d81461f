"""Fixtures of the fault tests: RabbitMQ nodes of the test's own (never the
shared broker) and the clinic started on them as processes, each with the
command its container runs."""
from __future__ import annotations

import pytest

from tests.support.clinic import ClinicProcesses
from tests.support.rabbit import RabbitCluster, rabbitmq_available

@pytest.fixture
def rabbit_cluster_factory(tmp_path_factory):
    """``make(size)``: a cluster of ``size`` nodes (not started). Every node
    is stopped at teardown, whatever the test did to it."""
    if not rabbitmq_available():
        pytest.skip("rabbitmq-server is not installed (Debian: apt-get install rabbitmq-server)")
    made: list[RabbitCluster] = []

    def make(size: int = 1) -> RabbitCluster:
        cluster = RabbitCluster(tmp_path_factory.mktemp("rabbit"), size)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.cleanup()


@pytest.fixture
def rabbit_node(rabbit_cluster_factory):
    """One RabbitMQ node of this test's own, started."""
    return rabbit_cluster_factory(1).start().first


@pytest.fixture
def clinic_processes(clean_databases, tmp_path):
    """``start(amqp_uri, services, **env)``: ``clinic run <service>`` for each,
    stopped at teardown."""
    started: list[ClinicProcesses] = []

    def start(amqp_uri: str, services, **env) -> ClinicProcesses:
        clinic = ClinicProcesses(amqp_uri, clean_databases, tmp_path / f"clinic-{len(started)}", services, env)
        started.append(clinic)
        return clinic.start()

    yield start
    for clinic in started:
        clinic.stop()

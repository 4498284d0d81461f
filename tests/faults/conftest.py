"""Faults made on loopback only, never a change to the shared servers: a TCP
proxy of the test's own in front of PostgreSQL or RabbitMQ, or RabbitMQ
nodes of the test's own with the clinic started on them as processes, each
with the command its container runs."""
from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.support.clinic import ClinicProcesses
from tests.support.rabbit import RabbitCluster, rabbitmq_available
from tests.support.tcp_proxy import TcpProxy

# Small, so that a test sees a service give up in a couple of seconds.
FAST_DATABASE_TIMEOUTS = {"DATABASE_CONNECT_TIMEOUT": 1, "DATABASE_STATEMENT_TIMEOUT": 2}


def through(url: str, proxy: TcpProxy) -> str:
    """``url`` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{proxy.port}" if credentials else f"127.0.0.1:{proxy.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def target_of(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname, parts.port


@pytest.fixture
def proxy_to():
    """``proxy_to(url, default_port)`` starts a proxy in front of the server
    ``url`` names. When the test ends each proxy forwards again for a while
    and then stops by itself: the test's containers are killed after this
    fixture is torn down, and nameko waits for ever for a broker it cannot
    reach."""
    proxies = []

    def start(url: str, default_port: int) -> TcpProxy:
        host, port = target_of(url)
        proxy = TcpProxy(host, port or default_port, lifetime=300).start()
        proxies.append(proxy)
        return proxy

    yield start
    for proxy in proxies:
        proxy.stop_later(30)


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

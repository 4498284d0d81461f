"""Shared fixtures. Tests run under ``nameko test`` (eventlet monkey-patched)
against the real local RabbitMQ (a fresh vhost per test, through nameko's
``rabbit_config``) and PostgreSQL (a database per service per run)."""
from __future__ import annotations

import pytest

from tests.support.databases import TestDatabases
from tests.support.events import EventRecorder
from tests.support.net import free_port
from tests.support.notifications import HttpReceiver, SmtpServer

STAFF_TOKENS = "t-front:front_desk:frontdesk,t-clin:clinician:dr.who,t-bill:billing:biller,t-admin:admin:root"


@pytest.fixture(scope="session")
def databases():
    dbs = TestDatabases()
    yield dbs
    dbs.drop_all()


@pytest.fixture
def clean_databases(databases):
    # Emptied before, not after, each test: containers may still be stopping
    # at teardown.
    databases.empty_all()
    return databases


@pytest.fixture
def clinic_config(rabbit_config, clean_databases):
    """A complete service configuration on a fresh vhost and the test
    databases."""
    return {
        **rabbit_config,
        "DATABASE_URLS": clean_databases,
        "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
        "OUTBOX_RELAY_INTERVAL": 0.2,
        "EVENT_MAX_ATTEMPTS": 3,
        "EVENT_RETRY_BASE_SECONDS": 0.1,
        "GATEWAY_TOKENS": STAFF_TOKENS,
        "INTAKE": {},
    }


@pytest.fixture
def start_service(container_factory, clinic_config):
    """Start a service container on the real broker; each gets its own HTTP
    port so several can run in one test."""

    def start(service_cls, **overrides):
        config = {**clinic_config, "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}", **overrides}
        container = container_factory(service_cls, config)
        container.start()
        return container

    return start


@pytest.fixture
def events(rabbit_config):
    recorder = EventRecorder(rabbit_config["AMQP_URI"])
    yield recorder
    recorder.close()


def web_address(container) -> str:
    return f"http://{container.config['WEB_SERVER_ADDRESS']}"


@pytest.fixture
def smtp():
    """A real SMTP server of the test's own (aiosmtpd) that keeps what it receives."""
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def sms():
    """An SMS provider stand-in: an HTTP server that keeps every request."""
    server = HttpReceiver().start()
    yield server
    server.stop()

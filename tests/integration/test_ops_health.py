"""Readiness goes red when a service's database or the broker cannot be
reached and green again when they can, and the gateway's aggregate follows;
metrics are scraped and parsed as Prometheus would. The shared servers are
never touched: each service reaches them through a proxy the test cuts."""
from urllib.parse import urlsplit

import httpx
import pytest
from nameko.testing.services import entrypoint_hook

from common.errors import ValidationFailed
from gateway.service import GatewayService
from services.intake.service import IntakeService
from tests.conftest import web_address
from tests.support.intake import PATIENT
from tests.support.ops import sample, scrape, wait_until
from tests.support.tcp_proxy import TcpProxy


def proxied(url: str, proxy: TcpProxy) -> str:
    port = urlsplit(url).port
    return url.replace(f":{port}/", f":{proxy.port}/", 1)


@pytest.fixture
def proxies(rabbit_config, databases):
    broker, database = urlsplit(rabbit_config["AMQP_URI"]), urlsplit(databases["intake"])
    made = {"broker": TcpProxy(broker.hostname, broker.port).start(),
            "database": TcpProxy(database.hostname, database.port).start()}
    yield made
    # Mended before the containers stop, so they shut down cleanly.
    for proxy in made.values():
        proxy.stop_later(30)


@pytest.fixture
def intake(start_service, rabbit_config, databases, proxies):
    return start_service(
        IntakeService,
        AMQP_URI=proxied(rabbit_config["AMQP_URI"], proxies["broker"]),
        DATABASE_URLS={"intake": proxied(databases["intake"], proxies["database"])},
    )


@pytest.fixture
def gateway(start_service, intake):
    return start_service(GatewayService, SERVICE_HEALTH_URLS={"intake": web_address(intake)})


def ready(container):
    answer = httpx.get(f"{web_address(container)}/ready", timeout=10)
    return answer.status_code, answer.json()


def aggregate(gateway):
    answer = httpx.get(f"{web_address(gateway)}/api/v1/health", timeout=10)
    return answer.status_code, answer.json()


@pytest.mark.parametrize("outage", ["database", "broker"])
def test_readiness_follows_the_database_and_the_broker(intake, gateway, proxies, outage):
    assert ready(intake) == (200, {"status": "ready", "service": "intake",
                                   "checks": {"database": "ok", "broker": "ok"}})
    assert aggregate(gateway) == (200, {"status": "ok", "services": {"intake": "ready"}})

    proxies[outage].down()
    status, body = ready(intake)
    assert status == 503 and body["status"] == "not_ready"
    assert body["checks"] == {"database": "ok", "broker": "ok", outage: "unreachable"}
    # Alive all the same: an orchestrator must not restart it for an outage elsewhere.
    assert httpx.get(f"{web_address(intake)}/health", timeout=5).status_code == 200
    assert aggregate(gateway) == (503, {"status": "degraded", "services": {"intake": "not_ready"}})

    proxies[outage].forward()
    wait_until(lambda: ready(intake)[0] == 200, timeout=20, message=f"ready again after the {outage} is back")
    assert aggregate(gateway)[0] == 200
    # And it works again, not merely answers: the pool and the consumers reconnected.
    with entrypoint_hook(intake, "register_patient") as register:
        assert register(PATIENT)["mrn"].startswith("MRN")


def test_a_stopped_service_shows_as_unreachable_in_the_aggregate(start_service):
    from tests.support.net import free_port

    gateway = start_service(GatewayService, SERVICE_HEALTH_URLS={"intake": f"http://127.0.0.1:{free_port()}"})
    assert aggregate(gateway) == (503, {"status": "degraded", "services": {"intake": "unreachable"}})


def test_metrics_are_scraped_and_parsed(start_service, databases):
    intake = start_service(IntakeService)
    base = web_address(intake)
    before = scrape(base)
    with entrypoint_hook(intake, "register_patient") as register:
        register(PATIENT)
        with pytest.raises(ValidationFailed):
            register({**PATIENT, "email": "not-an-email"})
    after = scrape(base)

    def calls(families, outcome):
        return sample(families, "clinic_entrypoint_calls", "clinic_entrypoint_calls_total", service="intake",
                      entrypoint="register_patient", kind="rpc", outcome=outcome) or 0

    assert calls(after, "ok") - calls(before, "ok") == 1
    assert calls(after, "rejected") - calls(before, "rejected") == 1
    latency = dict(service="intake", entrypoint="register_patient", kind="rpc")
    count = sample(after, "clinic_entrypoint_duration_seconds", "clinic_entrypoint_duration_seconds_count", **latency)
    assert count >= 2
    assert sample(after, "clinic_entrypoint_duration_seconds", "clinic_entrypoint_duration_seconds_bucket",
                  le="+Inf", **latency) == count
    # Event handlers, timers and HTTP are measured the same way.
    assert sample(after, "clinic_entrypoint_calls", service="intake", entrypoint="relay_outbox", kind="timer",
                  outcome="ok") >= 1
    assert sample(after, "clinic_outbox_backlog", service="intake") == 0
    assert sample(after, "clinic_outbox_oldest_pending_seconds", service="intake") == 0
    assert sample(after, "clinic_dead_letter_queue_depth") == 0
    # Declared for every process, so a dashboard finds them before the first one.
    assert {"clinic_dead_letters", "clinic_notifications"} <= set(after)


def test_the_gateway_serves_metrics_too(start_service):
    gateway = start_service(GatewayService, SERVICE_HEALTH_URLS={})
    base = web_address(gateway)
    assert httpx.get(f"{base}/api/v1/patients", timeout=5).status_code == 401  # no token
    assert httpx.get(f"{base}/api/v1/openapi.json", timeout=5).status_code == 200
    families = scrape(base)
    gateway_calls = [s for s in families["clinic_entrypoint_calls"]
                     if s.labels["service"] == "gateway" and s.labels["kind"] == "http"]
    assert {s.labels["outcome"] for s in gateway_calls} >= {"ok", "rejected"}
    assert sample(families, "clinic_entrypoint_calls", service="gateway", entrypoint="openapi",
                  kind="http", outcome="ok") >= 1


@pytest.fixture
def four_services_answering_together():
    """Four /ready endpoints that answer only once all four have been asked:
    a gateway that asks one after another gets the first answer only after
    its own probe timeout, so only asking them at once finds all four ready."""
    import threading

    import eventlet
    import eventlet.wsgi

    barrier = threading.Barrier(4, timeout=30)

    def ready_app(environ, start_response):
        try:
            barrier.wait()
            status, body = "200 OK", b'{"status": "ready"}'
        except threading.BrokenBarrierError:
            status, body = "503 Service Unavailable", b'{"status": "not_ready"}'
        start_response(status, [("Content-Type", "application/json")])
        return [body]

    servers, urls = [], {}
    for name in ("intake", "sessions", "billing", "notifications"):
        listener = eventlet.listen(("127.0.0.1", 0))
        servers.append(eventlet.spawn(eventlet.wsgi.server, listener, ready_app, log_output=False))
        urls[name] = f"http://127.0.0.1:{listener.getsockname()[1]}"
    yield urls
    barrier.abort()
    for server in servers:
        server.kill()


def test_the_aggregate_asks_every_service_at_once(start_service, four_services_answering_together):
    gateway = start_service(GatewayService, SERVICE_HEALTH_URLS=four_services_answering_together)
    assert aggregate(gateway) == (200, {"status": "ok", "services": {
        "intake": "ready", "sessions": "ready", "billing": "ready", "notifications": "ready"}})


def test_asking_for_the_aggregate_logs_at_debug_only(start_service, four_services_answering_together, caplog):
    import logging

    gateway = start_service(GatewayService, SERVICE_HEALTH_URLS=four_services_answering_together)
    with caplog.at_level(logging.DEBUG):
        assert aggregate(gateway)[0] == 200
        wait_until(lambda: any(r.getMessage() == "http services_health finished: ok" for r in caplog.records),
                   message="the entrypoint's line")
    ours = [r for r in caplog.records if r.name in ("clinic.entrypoint", "gateway.service")]
    assert {r.getMessage() for r in ours} >= {"probe intake: ready", "http services_health finished: ok"}
    assert {r.levelname for r in ours} == {"DEBUG"}

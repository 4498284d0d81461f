"""One port map: CLINIC_PORTS moves where ``clinic run`` starts each service
and, with it, where the gateway's /api/v1/health asks them."""
import pytest

from cli.services import SERVICES, health_urls, port_map, service_env

MOVED = {"CLINIC_PORTS": "gateway=18480,intake=18481,sessions=18482,billing=18483,notifications=18484"}


def test_the_default_ports():
    assert port_map({}) == {name: port for name, (_, port) in SERVICES.items()}


def test_moved_ports_move_the_services_and_the_gateway_probes():
    env = service_env("gateway", MOVED)
    assert env["WEB_SERVER_ADDRESS"] == "127.0.0.1:18480"
    assert {key: env[key] for key in env if key.endswith("_HEALTH_URL")} == {
        "INTAKE_HEALTH_URL": "http://127.0.0.1:18481", "SESSIONS_HEALTH_URL": "http://127.0.0.1:18482",
        "BILLING_HEALTH_URL": "http://127.0.0.1:18483", "NOTIFICATIONS_HEALTH_URL": "http://127.0.0.1:18484"}
    assert service_env("billing", MOVED)["WEB_SERVER_ADDRESS"] == "127.0.0.1:18483"


def test_one_moved_port_moves_one_probe():
    urls = health_urls({"CLINIC_PORTS": "sessions=19002"})
    assert urls["sessions"] == "http://127.0.0.1:19002" and urls["intake"] == "http://127.0.0.1:8001"


@pytest.mark.parametrize("bind, probed_host", [
    ("0.0.0.0", "127.0.0.1"), ("::", "127.0.0.1"), ("10.1.2.3", "10.1.2.3"), ("127.0.0.1", "127.0.0.1")])
def test_probes_reach_services_bound_to_any_address_on_loopback(bind, probed_host):
    env = service_env("gateway", {**MOVED, "CLINIC_BIND": bind})
    assert env["WEB_SERVER_ADDRESS"] == f"{bind}:18480"
    assert env["INTAKE_HEALTH_URL"] == f"http://{probed_host}:18481"


def test_addresses_set_explicitly_win():
    # docker-compose names each container instead.
    env = service_env("gateway", {**MOVED, "INTAKE_HEALTH_URL": "http://intake:8001",
                                  "WEB_SERVER_ADDRESS": "0.0.0.0:8000"})
    assert env["INTAKE_HEALTH_URL"] == "http://intake:8001" and env["WEB_SERVER_ADDRESS"] == "0.0.0.0:8000"
    assert env["SESSIONS_HEALTH_URL"] == "http://127.0.0.1:18482"


def test_only_the_gateway_is_given_probe_addresses():
    assert not [key for key in service_env("intake", MOVED) if key.endswith("_HEALTH_URL")]

"""Throwaway vhosts on the real broker, made and removed through the
management API the way the demo, the benchmarks and ``clinic run all``'s
test make them."""
import httpx
import pytest
from kombu import Connection

from common.rabbitmq import ManagementApi, throwaway_vhost
from tests.support.net import free_port


@pytest.fixture
def amqp_uri(request):
    return request.config.getoption("RABBIT_AMQP_URI")


def test_a_throwaway_vhost_is_usable_and_gone_afterwards(amqp_uri):
    api = ManagementApi(amqp_uri)
    with throwaway_vhost(amqp_uri, "test-throwaway") as uri:
        vhost = uri.rsplit("/", 1)[1]
        assert vhost.startswith("test-throwaway-")
        with Connection(uri, connect_timeout=5) as connection:
            connection.ensure_connection(max_retries=1)
            assert connection.virtual_host == vhost
        assert vhost in {v["name"] for v in api._call("GET", "vhosts").json()}
    assert vhost not in {v["name"] for v in api._call("GET", "vhosts").json()}


def test_no_management_api_is_an_error_before_anything_starts(amqp_uri):
    with pytest.raises(httpx.HTTPError):
        with throwaway_vhost(amqp_uri, "test-throwaway", url=f"http://127.0.0.1:{free_port()}"):
            pytest.fail("entered without a vhost")


def test_queue_statistics_of_the_vhost_in_the_amqp_uri(amqp_uri):
    with throwaway_vhost(amqp_uri, "test-throwaway") as uri:
        with Connection(uri) as connection:
            connection.default_channel.queue_declare("ops-probe", durable=False, auto_delete=False)
        assert "ops-probe" in {q["name"] for q in ManagementApi(uri).queues()}

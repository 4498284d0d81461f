"""One way to find RabbitMQ's management API, for ``clinic queues``, the
demo, the benchmarks and the test command."""
import pytest

from common.rabbitmq import ManagementApi, amqp_uri_for_vhost, management_auth, management_url, management_url_with_credentials

AMQP = "amqp://clinic:s3cret@broker.example:5672/clinic"


@pytest.mark.parametrize("environ, url", [
    ({}, "http://broker.example:15672"),
    ({"RABBITMQ_MANAGEMENT_URL": "http://rabbit.internal:15672/"}, "http://rabbit.internal:15672"),
    ({"RABBITMQ_MANAGEMENT_URL": "https://ops:pw@rabbit.internal/"}, "https://rabbit.internal"),
])
def test_where_the_management_api_is(environ, url):
    assert management_url(AMQP, environ) == url


def test_a_broker_given_by_ip_v6():
    assert management_url("amqp://guest:guest@[::1]:5672/", {}) == "http://[::1]:15672"


def test_credentials_come_from_the_amqp_uri_unless_the_url_has_its_own():
    assert management_auth(AMQP, {}) == ("clinic", "s3cret")
    assert management_auth(AMQP, {"RABBITMQ_MANAGEMENT_URL": "http://ops:p%40ss@rabbit:15672"}) == ("ops", "p@ss")
    assert management_auth("amqp://127.0.0.1//", {}) == ("guest", "guest")  # kombu's defaults


def test_the_form_nameko_test_takes():
    assert management_url_with_credentials("amqp://guest:guest@127.0.0.1:5672/", {}) == \
        "http://guest:guest@127.0.0.1:15672"


def test_a_vhost_uri_keeps_host_and_credentials():
    assert amqp_uri_for_vhost(AMQP, "clinic-demo-1a2b") == "amqp://clinic:s3cret@broker.example:5672/clinic-demo-1a2b"


def test_a_url_given_outright_may_carry_its_own_credentials():
    api = ManagementApi(AMQP, url="http://ops:pw@rabbit.internal:15672/", environ={})
    assert (api.url, api.auth) == ("http://rabbit.internal:15672", ("ops", "pw"))
    assert ManagementApi(AMQP, url="http://rabbit.internal:15672", environ={}).auth == ("clinic", "s3cret")

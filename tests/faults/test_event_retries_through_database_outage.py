"""Event handlers through a database outage, on the real broker and
PostgreSQL: billing's database is reached through a TCP proxy of the test's
own (tests.support.tcp_proxy.TcpProxy), which the test takes down (existing
connections dropped, new ones refused) and restores. An infrastructure fault is retried for the outage window,
not EVENT_MAX_ATTEMPTS times; a retry holds no worker; a window that runs
out dead-letters the event as ``outage``."""
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from nameko.standalone.rpc import ServiceRpcProxy

from common.deadletter_operations import list_dead_letters
from common.handlers import consumes, rpc
from common.observability import ENTRYPOINT_CALLS
from common.outbox import plumbing_metadata
from common.service import ClinicService
from services.billing.service import BillingService
from services.intake.events import PatientRegistered
from tests.support.billing import completed_session, new_id, rpc_caller
from tests.support.events import example_data, publish_event
from tests.support.ops import wait_until
from tests.support.tcp_proxy import TcpProxy


def through_proxy(url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(url)
    return url.replace(f"@{parts.hostname}:{parts.port or 5432}/", f"@127.0.0.1:{proxy.port}/", 1)


def retries(service, entrypoint):
    return ENTRYPOINT_CALLS.labels(service, entrypoint, "event", "retrying")._value.get()


def test_an_event_arriving_while_the_database_is_down_is_applied_when_it_is_back(start_service, databases,
                                                                                 rabbit_config):
    target = urlsplit(databases["billing"])
    proxy = TcpProxy(target.hostname, target.port or 5432).start()
    # Left running after the test: the container is killed at teardown and
    # must not see its database vanish first.
    billing = start_service(BillingService, DATABASE_URLS={"billing": through_proxy(databases["billing"], proxy)},
                            EVENT_MAX_ATTEMPTS=3, EVENT_OUTAGE_WINDOW=300, EVENT_RETRY_BASE_SECONDS=0.1,
                            EVENT_RETRY_MAX_DELAY=0.4, BILLING={"OVERDUE_SCAN_SECONDS": 3600})
    before = retries("billing", "on_session_completed")
    patient_id = new_id()

    proxy.down()
    publish_event(rabbit_config["AMQP_URI"], "sessions", "session.completed", completed_session(patient_id))
    # Far more attempts than EVENT_MAX_ATTEMPTS, and still not dead-lettered.
    wait_until(lambda: retries("billing", "on_session_completed") >= before + 8, timeout=30,
               message="the event retried through the outage")
    assert list_dead_letters(rabbit_config["AMQP_URI"]) == []

    proxy.forward()
    call = rpc_caller(billing)
    charges = wait_until(lambda: call("list_charges", patient_id, {})["items"], timeout=30,
                         message="the charges raised once the database is back")
    assert {charge["code"] for charge in charges} >= {"J3490"}
    assert list_dead_letters(rabbit_config["AMQP_URI"]) == []


class Unreachable:
    calls = 0


class OutageProbe(ClinicService):
    """A handler whose downstream is always unreachable, and an RPC method
    that needs nothing: it must keep answering while the handler retries."""
    name = "outage_probe"

    @consumes(PatientRegistered)
    def on_patient_registered(self, uow, event):
        Unreachable.calls += 1
        raise ConnectionRefusedError("the ledger refused the connection")

    @rpc
    def ping(self):
        return "pong"


@pytest.fixture
def probe_database(tmp_path):
    url = f"sqlite:///{tmp_path}/outage_probe.sqlite3"
    plumbing_metadata.create_all(sa.create_engine(url))
    return {"outage_probe": url}


@pytest.mark.parametrize("queue_type", ["classic", "quorum"])
def test_retries_hold_no_worker_and_a_spent_window_dead_letters(start_service, probe_database, rabbit_config,
                                                                queue_type):
    Unreachable.calls = 0
    probe = start_service(OutageProbe, DATABASE_URLS=probe_database, max_workers=2, EVENT_MAX_ATTEMPTS=2,
                          EVENT_OUTAGE_WINDOW=2, EVENT_RETRY_BASE_SECONDS=0.2, EVENT_RETRY_MAX_DELAY=0.5,
                          QUEUE_TYPE=queue_type)
    published = [publish_event(rabbit_config["AMQP_URI"], "intake", "patient.registered",
                               example_data(PatientRegistered, patient_id=str(n)))
                 for n in range(12)]
    # Six times as many failing events as workers, all retrying: RPC still answers.
    with ServiceRpcProxy("outage_probe", probe.config, timeout=20) as proxy:
        wait_until(lambda: Unreachable.calls >= 12, message="every event tried")
        assert proxy.ping() == "pong"

    letters = wait_until(lambda: (lambda found: found if len(found) == 12 else None)(
        list_dead_letters(rabbit_config["AMQP_URI"])), timeout=30, message="every event dead-lettered")
    assert {letter["reason"] for letter in letters} == {"outage"}
    assert {letter["event_id"] for letter in letters} == {body["event_id"] for body in published}
    # More attempts than EVENT_MAX_ATTEMPTS: the window, not the count, decided.
    assert all(letter["attempts"] > 2 for letter in letters)
    assert all(letter["error"].startswith("ConnectionRefusedError") for letter in letters)

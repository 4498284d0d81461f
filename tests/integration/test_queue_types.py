"""QUEUE_TYPE on the real broker: quorum declares the queues a service
consumes from as quorum queues that hand a message over to the clinic's
dead-letter queue after QUEUE_DELIVERY_LIMIT deliveries; classic keeps
nameko's plain declarations; reply queues are never quorum."""
import pytest
import sqlalchemy as sa
from nameko.standalone.rpc import ServiceRpcProxy

from common.handlers import consumes, rpc
from common.outbox import plumbing_metadata
from common.queues import DEAD_LETTER_QUEUE, QueueTypeMismatch, consumer_queue_arguments, queue_type
from common.service import ClinicService
from services.intake.events import PatientRegistered

EVENT_QUEUE = "evt-intake-patient.registered--queue_probe.on_patient_registered"


class QueueProbe(ClinicService):
    name = "queue_probe"

    @consumes(PatientRegistered)
    def on_patient_registered(self, uow, event):
        pass

    @rpc
    def ping(self):
        return "pong"


@pytest.fixture
def probe_database(tmp_path):
    url = f"sqlite:///{tmp_path}/queue_probe.sqlite3"
    plumbing_metadata.create_all(sa.create_engine(url))
    return {"queue_probe": url}


def queues_by_name(rabbit_manager, vhost):
    return {queue["name"]: queue for queue in rabbit_manager.get_queues(vhost)}


def test_quorum_queues_with_a_delivery_limit_and_the_dead_letter_queue(
        start_service, probe_database, rabbit_config, rabbit_manager):
    container = start_service(QueueProbe, DATABASE_URLS=probe_database, QUEUE_TYPE="quorum",
                              QUEUE_DELIVERY_LIMIT=4)
    with ServiceRpcProxy("queue_probe", container.config) as proxy:
        assert proxy.ping() == "pong"
        queues = queues_by_name(rabbit_manager, rabbit_config["vhost"])

        for name in (EVENT_QUEUE, "rpc-queue_probe"):
            queue = queues[name]
            assert queue["type"] == "quorum", name
            assert queue["durable"] is True
            assert queue["arguments"]["x-delivery-limit"] == 4
            assert queue["arguments"]["x-dead-letter-exchange"] == ""
            assert queue["arguments"]["x-dead-letter-routing-key"] == DEAD_LETTER_QUEUE
        # Where the broker sends a message past its limit must exist, or the
        # message would be dropped.
        assert queues[DEAD_LETTER_QUEUE]["type"] == "quorum"
        replies = [queue for name, queue in queues.items() if name.startswith("rpc.reply-")]
        assert replies and all(queue["type"] == "classic" for queue in replies)


def test_classic_is_nameko_s_own_declaration(start_service, probe_database, rabbit_config, rabbit_manager):
    start_service(QueueProbe, DATABASE_URLS=probe_database, QUEUE_TYPE="classic")
    queues = queues_by_name(rabbit_manager, rabbit_config["vhost"])
    for name in (EVENT_QUEUE, "rpc-queue_probe"):
        assert queues[name]["type"] == "classic"
        assert queues[name]["arguments"] == {}


def test_queue_type_is_checked():
    assert queue_type({}) == "classic"
    assert queue_type({"QUEUE_TYPE": " Quorum "}) == "quorum"
    assert consumer_queue_arguments({"QUEUE_TYPE": "classic"}) == {}
    with pytest.raises(ValueError, match="QUEUE_TYPE"):
        queue_type({"QUEUE_TYPE": "stream"})


def test_a_classic_queue_is_not_silently_redeclared_as_quorum(start_service, probe_database):
    """The documented failure an operator switching types meets: the
    service refuses to start rather than consuming from the wrong queue."""
    start_service(QueueProbe, DATABASE_URLS=probe_database, QUEUE_TYPE="classic").stop()
    with pytest.raises(QueueTypeMismatch, match="QUEUE_TYPE=quorum") as refused:
        start_service(QueueProbe, DATABASE_URLS=probe_database, QUEUE_TYPE="quorum")
    assert "operations.md" in str(refused.value)

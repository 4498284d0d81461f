"""The transactional outbox and idempotent consumers on the real broker."""
import eventlet
import sqlalchemy as sa
from nameko.testing.services import entrypoint_hook
from urllib.parse import urlsplit

from common.events import EventData
from common.handlers import consumes
from common.service import ClinicService
from services.intake.service import IntakeService
from services.intake.events import PatientRegistered
from tests.support.events import example_data, publish_event, republish
from tests.support.intake import PATIENT
from tests.support.tcp_proxy import TcpProxy


def outbox_rows(databases, where=""):
    with databases.engine("intake").connect() as connection:
        return connection.execute(sa.text(f"SELECT event_type, sent_at FROM outbox {where}")).all()


def test_an_event_committed_while_the_broker_is_unreachable_is_published_when_it_is_back(
        start_service, rabbit_config, databases, events):
    events.listen("intake")
    broker = urlsplit(rabbit_config["AMQP_URI"])
    proxy = TcpProxy(broker.hostname, broker.port or 5672).start()
    proxied_uri = rabbit_config["AMQP_URI"].replace(f":{broker.port or 5672}/", f":{proxy.port}/")
    intake = start_service(IntakeService, AMQP_URI=proxied_uri)
    # The proxy is left running after the test: the container is killed at
    # teardown and must not see its broker vanish first.
    proxy.down()
    with entrypoint_hook(intake, "register_patient") as register:
        patient = register(PATIENT)  # the commit succeeds without a broker
    assert [row.sent_at for row in outbox_rows(databases)] == [None]
    eventlet.sleep(0.5)
    assert events.events("patient.registered") == []

    proxy.forward()
    event = events.wait_for("patient.registered", timeout=20)
    assert event["data"]["patient_id"] == patient["patient_id"]
    eventlet.sleep(1)  # a second publish would show up by now
    assert len(events.events("patient.registered")) == 1
    assert outbox_rows(databases, "WHERE sent_at IS NULL") == []


class AccountOpened(EventData):
    producer = "account_probe"
    type = "probe.account_opened"

    patient_id: str


class AccountProbe(ClinicService):
    """A consumer whose only effect is an outbox row per event it applies."""

    name = "account_probe"

    @consumes(PatientRegistered)
    def open_account(self, uow, event):
        uow.emit(AccountOpened(patient_id=event.data.patient_id))


def probe_effects(databases):
    with databases.engine("intake").connect() as connection:
        return connection.execute(sa.text(
            "SELECT count(*) FROM outbox WHERE event_type = 'probe.account_opened'")).scalar_one()


def test_the_same_event_delivered_twice_has_one_effect(start_service, rabbit_config, databases):
    # The probe shares intake's test database: it only needs the plumbing tables.
    urls = {"account_probe": databases["intake"]}
    start_service(AccountProbe, DATABASE_URLS=urls)
    start_service(AccountProbe, DATABASE_URLS=urls)  # a second replica competing for the queue
    body = publish_event(rabbit_config["AMQP_URI"], "intake", "patient.registered",
                         example_data(PatientRegistered, patient_id="p-1"))
    for _ in range(4):
        republish(rabbit_config["AMQP_URI"], body)
    other = publish_event(rabbit_config["AMQP_URI"], "intake", "patient.registered",
                          example_data(PatientRegistered, patient_id="p-2"))
    deadline = eventlet.Timeout(15)
    try:
        while probe_effects(databases) < 2:
            eventlet.sleep(0.1)
    finally:
        deadline.cancel()
    eventlet.sleep(1)  # let any duplicate finish
    assert probe_effects(databases) == 2
    with databases.engine("intake").connect() as connection:
        applied = connection.execute(sa.text("SELECT event_id FROM processed_events")).scalars().all()
    assert sorted(applied) == sorted([body["event_id"], other["event_id"]])

"""Event contracts (common/events.py): strict when the producer builds one,
lenient about unknown fields when a consumer reads one, and a clear,
value-free reason when a consumer cannot."""
from datetime import date, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError
import sqlalchemy as sa
from sqlalchemy.orm import Session

from common.database import UnitOfWork
from common.errors import ClinicError, ValidationFailed
from common.events import EventData, Received, UnknownEventVersion, contract_versions, envelope
from common.outbox import plumbing_metadata
from services.billing.events import InvoiceIssued
from services.sessions.events import SessionCompleted, SessionVitalsAlert
from tests.support.events import example_data

STARTED = datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc)


def completed(**overrides) -> SessionCompleted:
    facts = dict(patient_id="p-1", session_id="s-1", appointment_id="a-1", plan_id="plan-1", route="iv_infusion",
                 drug="ketamine", dose_mg=35.0, started_at=STARTED, ended_at=STARTED + timedelta(minutes=40),
                 duration_minutes=40, date_of_service=date(2026, 11, 20), clinician_id="dr.who", sequence=1)
    return SessionCompleted(**{**facts, **overrides})


def body_of(contract: type[EventData], data: dict, version: int | None = None) -> dict:
    return envelope(contract.type, data, producer=contract.producer,
                    version=contract.version if version is None else version)


def read(contract, data, version=None):
    return Received.read(body_of(contract, data, version), contract_versions((contract,)))


# ------------------------------------------------------------ the producer

def test_the_producer_gets_the_wire_form_consumers_have_always_read():
    facts = completed().facts()
    assert facts["started_at"] == "2026-11-20T15:00:00Z" and facts["ended_at"] == "2026-11-20T15:40:00Z"
    assert facts["date_of_service"] == "2026-11-20" and facts["dose_mg"] == 35.0
    # A naive instant (SQLite hands them back) is UTC; another offset is converted.
    naive = completed(started_at=datetime(2026, 11, 20, 15, 0)).facts()
    assert naive["started_at"] == "2026-11-20T15:00:00Z"
    eastern = completed(started_at=datetime(2026, 11, 20, 10, 0, tzinfo=timezone(timedelta(hours=-5)))).facts()
    assert eastern["started_at"] == "2026-11-20T15:00:00Z"


def test_a_misspelt_key_fails_in_the_producer():
    with pytest.raises(ValidationError) as caught:
        completed(duration_minuts=40)
    assert {error["type"] for error in caught.value.errors()} == {"extra_forbidden"}


def test_a_field_the_producer_forgets_fails_in_the_producer():
    facts = completed().facts()
    del facts["clinician_id"]
    with pytest.raises(ValidationError) as caught:
        SessionCompleted(**facts)
    assert [error["loc"] for error in caught.value.errors()] == [("clinician_id",)]


def test_a_misspelt_key_inside_a_structured_field_fails_in_the_producer():
    with pytest.raises(ValidationError):
        SessionVitalsAlert(patient_id="p-1", session_id="s-1", mrn=None, chair_id="c-1", clinician_id="d-1",
                           recorded_at=STARTED, alerts=[{"code": "spo2_low", "measure": "spo2", "valeu": 89,
                                                         "threshold": 92}])


def test_a_unit_of_work_emits_only_its_own_contracts_in_the_envelope():
    engine = sa.create_engine("sqlite://")
    plumbing_metadata.create_all(engine)
    uow = UnitOfWork(Session(engine), producer="sessions", correlation_id="c-1", actor=None)
    body = uow.emit(completed())
    assert (body["type"], body["version"], body["producer"], body["correlation_id"]) == (
        "session.completed", 1, "sessions", "c-1")
    assert body["data"] == completed().facts()
    with pytest.raises(TypeError):
        uow.emit({"type": "session.completed"})
    with pytest.raises(TypeError):
        uow.emit(InvoiceIssued(patient_id="p-1", invoice_id="i-1", number="INV-000001", total_cents=100,
                               currency="USD", due_date=date(2026, 12, 1), issued_at=STARTED))


# ------------------------------------------------------------ the consumer

def test_a_consumer_reads_the_typed_data_and_the_envelope():
    event = read(SessionCompleted, completed().facts())
    assert isinstance(event.data, SessionCompleted)
    assert event.data.started_at == STARTED and event.data.date_of_service == date(2026, 11, 20)
    assert event.type == "session.completed" and event.version == 1 and event.occurred_at.tzinfo is not None


def test_a_consumer_ignores_fields_it_does_not_know_also_inside_structured_fields():
    data = {**example_data(SessionVitalsAlert), "ward": "B",
            "alerts": [{"code": "spo2_low", "measure": "spo2", "value": 89, "threshold": 92, "trend": "down"}]}
    event = read(SessionVitalsAlert, data)
    assert event.data.alerts[0].value == 89 and not hasattr(event.data, "ward")
    # What a forwarder passes on is the body as sent, unknown fields included.
    assert event.body["data"]["ward"] == "B"


def test_a_missing_field_is_a_bad_message_naming_the_field_not_its_values():
    data = completed(clinician_id="dr.secret-name").facts()
    del data["duration_minutes"]
    data["dose_mg"] = "a lot"
    with pytest.raises(ValidationFailed) as caught:
        read(SessionCompleted, data)
    message = str(caught.value)
    assert message.startswith("session.completed v1 data does not match its contract")
    assert "duration_minutes" in message and "dose_mg" in message
    assert "a lot" not in message and "dr.secret-name" not in message
    assert {problem["field"] for problem in caught.value.details} == {"duration_minutes", "dose_mg"}


def test_a_misspelt_key_from_a_foreign_producer_reads_as_the_field_missing():
    data = completed().facts()
    data["sesion_id"] = data.pop("session_id")
    with pytest.raises(ValidationFailed) as caught:
        read(SessionCompleted, data)
    assert [problem["field"] for problem in caught.value.details] == ["session_id"]


def test_an_unknown_version_is_refused_with_its_number_and_type():
    with pytest.raises(UnknownEventVersion) as caught:
        read(SessionCompleted, completed().facts(), version=2)
    assert str(caught.value) == "unknown version 2 of session.completed"
    assert isinstance(caught.value, ClinicError)  # dead-lettered at once, not retried


def test_a_handler_may_take_several_versions_of_one_event_type():
    class SessionCompletedV2(SessionCompleted):
        version = 2
        chair_id: str

    versions = contract_versions((SessionCompleted, SessionCompletedV2))
    v2 = Received.read(body_of(SessionCompletedV2, {**completed().facts(), "chair_id": "c-1"}), versions)
    v1 = Received.read(body_of(SessionCompleted, completed().facts()), versions)
    assert isinstance(v2.data, SessionCompletedV2) and v2.data.chair_id == "c-1"
    assert type(v1.data) is SessionCompleted
    with pytest.raises(TypeError):
        contract_versions((SessionCompleted, InvoiceIssued))
    with pytest.raises(TypeError):
        contract_versions((SessionCompleted, SessionCompleted))


def test_data_that_is_not_an_object_is_a_bad_message():
    with pytest.raises(ValidationFailed):
        read(SessionCompleted, ["not", "an", "object"])


def test_every_contract_has_an_example_it_accepts():
    from services.events_catalogue import all_contracts

    for contract in all_contracts():
        data = example_data(contract)
        assert read(contract, data).data == contract(**data)

import pytest
import sqlalchemy as sa
from nameko.testing.services import entrypoint_waiter

from services.sessions.service import SessionsService
from tests.support.calls import as_staff
from tests.support.events import publish_event
from tests.support.sessions import CLINICIAN, approval_data, move_to_today


@pytest.fixture
def sessions(start_service):
    return start_service(SessionsService)


@pytest.fixture
def call(sessions):
    def call(method, *args, actor=CLINICIAN, **kwargs):
        return as_staff(sessions, actor)(method, *args, **kwargs)
    return call


@pytest.fixture
def deliver(sessions, clinic_config):
    """Publish an intake event and wait until sessions' handler has run."""
    def deliver(event_type, data, handler, **options):
        with entrypoint_waiter(sessions, handler, timeout=10):
            return publish_event(clinic_config["AMQP_URI"], "intake", event_type, data, **options)
    return deliver


@pytest.fixture
def patient_id(deliver):
    data = approval_data()
    deliver("intake.approved", data, "on_intake_approved")
    return data["patient_id"]


@pytest.fixture
def chairs(call):
    return [call("add_resource", {"kind": "chair", "name": f"Chair {n}"})["resource_id"] for n in (1, 2)]


@pytest.fixture
def clinicians(call):
    return [call("add_resource", {"kind": "clinician", "name": f"Dr {n}"})["resource_id"] for n in ("A", "B")]


@pytest.fixture
def count(databases):
    def count(table, where="TRUE"):
        with databases.engine("sessions").connect() as connection:
            return connection.execute(sa.text(f"SELECT count(*) FROM {table} WHERE {where}")).scalar_one()
    return count


@pytest.fixture
def execute(databases):
    """Move the clock of a record (e.g. an appointment into the past)."""
    def execute(statement, **params):
        with databases.engine("sessions").begin() as connection:
            connection.execute(sa.text(statement), params)
    return execute


@pytest.fixture
def arrived(databases):
    """The appointment moved to today (see move_to_today), ready for check-in."""
    def arrived(appointment_id, starts_at=None):
        return move_to_today(databases.engine("sessions"), appointment_id, starts_at)
    return arrived

"""Each service reads its configuration section once, when its container
starts: a value that cannot be used stops the service there, before it
takes any work, instead of failing every call that needs it."""
import pytest
from nameko.testing.services import entrypoint_hook

from services.billing.service import BillingService
from services.intake.service import IntakeService
from services.notifications.service import NotificationsService
from services.sessions.service import SessionsService


@pytest.mark.parametrize("service_cls, section", [
    (IntakeService, {"INTAKE": {"HYPERTENSION_SYSTOLIC": "very high"}}),
    (SessionsService, {"SESSIONS": {"late_cancellation_hours": "a day"}}),
    (BillingService, {"BILLING": {"KETAMINE_UNIT": "ml"}}),
    (NotificationsService, {"NOTIFICATIONS": {"SCHEDULER_BATCH": "fifty"}}),
])
def test_a_bad_value_stops_the_service_at_start(start_service, databases, service_cls, section):
    # Created beforehand: the other extensions of a container that fails to
    # start go on setting up, and must not be left creating a database.
    databases.engine(service_cls.name)
    with pytest.raises(ValueError):
        start_service(service_cls, **section)


def test_sessions_rules_come_from_its_section(start_service):
    sessions = start_service(SessionsService, SESSIONS={"time_zone": "Europe/London"})
    with entrypoint_hook(sessions, "get_schedule") as get_schedule:
        assert get_schedule("2026-12-07")["time_zone"] == "Europe/London"

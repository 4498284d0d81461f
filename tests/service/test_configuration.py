"""Each service reads its configuration section once, when its container
starts: a value that cannot be used stops the service there, before it
takes any work, instead of failing every call that needs it."""
import pytest
from nameko.containers import ServiceContainer
from nameko.testing.services import entrypoint_hook

from common.service import ConfigSection
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
def test_a_bad_value_stops_the_service_at_start(clinic_config, service_cls, section):
    # Setting up its extensions is the first thing a container's start does.
    # A whole container failing to start would leave nameko's timers, never
    # started, raising when the test kills them.
    container = ServiceContainer(service_cls, {**clinic_config, **section})
    sections = [extension for extension in container.dependencies if isinstance(extension, ConfigSection)]
    assert [extension.section_name for extension in sections] == [next(iter(section))]
    with pytest.raises(ValueError, match=f"the {next(iter(section))} section"):
        for extension in sections:
            extension.setup()


def test_sessions_rules_come_from_its_section(start_service):
    sessions = start_service(SessionsService, SESSIONS={"time_zone": "Europe/London"})
    with entrypoint_hook(sessions, "get_schedule") as get_schedule:
        assert get_schedule("2026-12-07")["time_zone"] == "Europe/London"

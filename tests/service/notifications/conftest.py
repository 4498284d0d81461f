"""What notifications' service tests share. Each module declares its own
``notifications`` container (its configuration differs); these use it."""
import pytest

from tests.support.calls import as_staff


@pytest.fixture
def amqp(clinic_config):
    return clinic_config["AMQP_URI"]


@pytest.fixture
def call(notifications):
    return as_staff(notifications, "frontdesk (front_desk)")

"""What intake's service tests share; each module says who calls
(``call``), since the staff role matters to what intake allows."""
import pytest

from services.intake.service import IntakeService


@pytest.fixture
def intake(start_service):
    return start_service(IntakeService)

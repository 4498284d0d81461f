"""The intake service class with its dependencies replaced (nameko's
worker_factory): bad input is refused before the database is touched."""
import pytest
from nameko.testing.services import worker_factory

from common.errors import ValidationFailed
from services.intake.service import IntakeService
from tests.support.intake import PATIENT


@pytest.fixture
def intake():
    return worker_factory(IntakeService)


@pytest.mark.parametrize("method, args", [
    ("register_patient", ({**PATIENT, "phone": "call me"},)),
    ("register_patient", ("not an object",)),
    ("update_patient", ("p-1", {})),
    ("record_consent", ("p-1", {"kind": "carrier pigeon", "method": "written"})),
    ("submit_questionnaire", ("p-1", {"instrument": "phq9", "answers": [0, 1]})),
    ("screen_patient", ("p-1", {"systolic": "high", "diastolic": 80})),
    ("approve_intake", ("p-1", {"reason": ""})),
    ("find_patients", ({"limit": 1000},)),
])
def test_bad_input_never_reaches_the_database(intake, method, args):
    with pytest.raises(ValidationFailed):
        getattr(intake, method)(*args)
    intake.db.unit_of_work.assert_not_called()


"""Guards the service applies before it touches the database, checked with
nameko's worker_factory (every dependency mocked)."""
import pytest
from nameko.testing.services import worker_factory

from common.errors import Forbidden, ValidationFailed
from services.sessions.service import SessionsService, actor_role


@pytest.mark.parametrize("actor, role", [
    ("dr.who (clinician)", "clinician"), ("root (admin)", "admin"), ("frontdesk (front_desk)", "front_desk"),
    ("Dr (Jr) Smith (clinician)", "clinician"), ("no role", None), (None, None), ("", None),
])
def test_the_role_is_read_from_the_actor(actor, role):
    assert actor_role(actor) == role


@pytest.mark.parametrize("method, args", [
    ("create_plan", ({"patient_id": "p", "route": "iv_infusion", "indication": "ptsd"},)),
    ("update_plan", ("plan", {"mg_per_kg": 0.5})),
    ("start_session", ("s", {"lot_number": "L"})),
    ("complete_session", ("s", {"alert_and_oriented": True, "escort_present": True, "no_driving_advised": True})),
    ("sign_session", ("s",)),
    ("add_addendum", ("s", {"text": "late entry"})),
    ("record_rems_enrollment", ("p", {"enrollment_id": "REMS-1", "enrolled_on": "2026-11-01"})),
])
@pytest.mark.parametrize("actor", ["frontdesk (front_desk)", "biller (billing)", None])
def test_clinical_decisions_need_a_clinician(method, args, actor):
    service = worker_factory(SessionsService)
    service.db.actor = actor
    with pytest.raises(Forbidden):
        getattr(service, method)(*args)
    service.db.unit_of_work.assert_not_called()


def test_input_is_validated_before_any_transaction():
    service = worker_factory(SessionsService)
    service.db.actor = "dr.who (clinician)"
    with pytest.raises(ValidationFailed) as caught:
        service.create_plan({"patient_id": "p", "route": "iv", "indication": "ptsd"})
    assert caught.value.details[0]["field"] == "route"
    service.db.unit_of_work.assert_not_called()

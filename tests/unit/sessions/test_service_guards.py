"""Guards the service applies before it touches the database, checked with
nameko's worker_factory (every dependency mocked)."""
from unittest import mock

import pytest
from nameko.testing.services import worker_factory

from common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from services.sessions.capabilities.chart import actor_role
from services.sessions.service import SessionsService


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


@pytest.mark.parametrize("status, signed_at, move, refused", [
    ("checked_in", None, "update_checklist", None),
    ("in_progress", None, "record", None),
    ("completed", None, "record", Conflict),
    ("completed", "2026-11-24T10:00:00+00:00", "record", Conflict),
    ("in_progress", None, "start", Conflict),
])
def test_a_session_record_is_changed_only_by_a_move_its_state_allows(status, signed_at, move, refused):
    service = worker_factory(SessionsService)
    session = mock.Mock()
    session.get.return_value = mock.Mock(status=status, signed_at=signed_at)
    if refused:
        with pytest.raises(refused):
            service._session_for(session, "s1", move)
    else:
        assert service._session_for(session, "s1", move) is session.get.return_value
    # Locked before the check, so two changes to one record are taken in turn.
    assert session.get.call_args.kwargs["with_for_update"] is True


def test_changing_a_session_that_does_not_exist_is_not_found():
    service = worker_factory(SessionsService)
    session = mock.Mock()
    session.get.return_value = None
    with pytest.raises(NotFound):
        service._session_for(session, "missing", "record")

"""The eligibility read model from intake's events, and treatment plans."""
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from nameko.testing.services import entrypoint_waiter

from common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from tests.support.events import republish
from tests.support.sessions import FRONT_DESK, IV_PLAN, approval_data, iso

NOW = datetime.now(timezone.utc)


def test_an_approved_intake_makes_the_patient_eligible(call, patient_id):
    view = call("get_eligibility", patient_id)
    assert (view["intake_status"], view["eligible"], view["baseline_phq9"], view["weight_kg"]) == (
        "approved", True, 20, 70)


def test_events_out_of_order_or_twice_leave_the_newest_fact(call, deliver, sessions, clinic_config):
    pid = str(uuid.uuid4())
    # The decline happened after the approval but arrives first.
    deliver("intake.declined", {"patient_id": pid, "decided_by": "dr.who", "decided_at": iso(NOW)},
            "on_intake_declined", occurred_at=iso(NOW))
    approved = deliver("intake.approved", approval_data(pid), "on_intake_approved",
                       occurred_at=iso(NOW - timedelta(minutes=5)))
    assert call("get_eligibility", pid)["intake_status"] == "declined"
    # A redelivery of the (older) approval changes nothing either.
    with entrypoint_waiter(sessions, "on_intake_approved", timeout=10):
        republish(clinic_config["AMQP_URI"], approved)
    assert call("get_eligibility", pid)["intake_status"] == "declined"


def test_withdrawn_treatment_consent_stops_new_plans(call, deliver, patient_id, count):
    withdrawn = {"patient_id": patient_id, "consent_id": "c1", "kind": "treatment", "status": "withdrawn",
                 "effective_at": iso(NOW)}
    deliver("consent.recorded", withdrawn, "on_consent_recorded", occurred_at=iso(NOW + timedelta(seconds=1)))
    # An older "granted" arriving late does not bring consent back.
    deliver("consent.recorded", {**withdrawn, "status": "granted"}, "on_consent_recorded",
            occurred_at=iso(NOW - timedelta(days=1)))
    assert call("get_eligibility", patient_id)["eligible"] is False
    with pytest.raises(Conflict, match="withdrawn consent"):
        call("create_plan", {**IV_PLAN, "patient_id": patient_id})
    assert count("treatment_plans") == 0


def test_patient_details_follow_the_newest_event(call, deliver, patient_id):
    details = {"patient_id": patient_id, "mrn": "MRN0000042", "given_name": "Ana", "family_name": "Lopez",
               "date_of_birth": "1980-02-03", "sex": "female", "phone": None, "email": None,
               "time_zone": "America/Los_Angeles", "diagnosis_codes": ["F33.2"]}
    deliver("patient.updated", {**details, "time_zone": "Europe/Paris", "changed": ["time_zone"]},
            "on_patient_updated", occurred_at=iso(NOW))
    deliver("patient.registered", details, "on_patient_registered", occurred_at=iso(NOW - timedelta(days=2)))
    assert call("get_eligibility", patient_id)["time_zone"] == "Europe/Paris"


def test_no_plan_for_a_patient_intake_has_not_approved(call, count):
    with pytest.raises(Conflict, match="not approved") as caught:
        call("create_plan", {**IV_PLAN, "patient_id": str(uuid.uuid4())})
    assert caught.value.details == {"intake_status": "unknown"}
    assert count("treatment_plans") == 0 and count("outbox") == 0


def test_a_clinician_creates_the_plan_with_route_defaults(call, patient_id, events):
    events.listen("sessions")
    plan = call("create_plan", {"patient_id": patient_id, "route": "iv_infusion", "indication": "ptsd"})
    assert (plan["drug"], plan["mg_per_kg"], plan["max_dose_mg"], plan["induction_sessions"],
            plan["min_hours_apart"], plan["baseline_phq9"]) == ("ketamine", 0.5, 75.0, 6, 48, 20)
    created = events.wait_for("plan.created")["data"]
    assert set(created) == {"patient_id", "plan_id", "route", "drug", "induction_sessions", "mg_per_kg",
                            "max_dose_mg", "max_mg_per_kg", "created_by"}
    changed = call("update_plan", plan["plan_id"], {"mg_per_kg": 0.75, "maintenance_interval_days": 28})
    assert (changed["mg_per_kg"], changed["maintenance_interval_days"]) == (0.75, 28)


@pytest.mark.parametrize("field", ["indication", "max_dose_mg", "induction_sessions", "min_hours_apart", "status"])
def test_a_plan_change_cannot_null_what_every_plan_has(call, patient_id, field):
    plan = call("create_plan", {**IV_PLAN, "patient_id": patient_id})
    with pytest.raises(ValidationFailed) as caught:
        call("update_plan", plan["plan_id"], {field: None})
    assert [e["field"] for e in caught.value.details] == [field]
    assert call("get_plan", plan["plan_id"])[field] == plan[field]


@pytest.mark.parametrize("actor", [FRONT_DESK, None, "someone"])
def test_only_a_clinician_creates_or_changes_a_plan(call, patient_id, actor, count):
    with pytest.raises(Forbidden):
        call("create_plan", {**IV_PLAN, "patient_id": patient_id}, actor=actor)
    plan = call("create_plan", {**IV_PLAN, "patient_id": patient_id})
    with pytest.raises(Forbidden):
        call("update_plan", plan["plan_id"], {"mg_per_kg": 1.0}, actor=actor)
    assert count("treatment_plans") == 1


@pytest.mark.parametrize("change, field", [
    ({"route": "rectal"}, "route"),
    ({"mg_per_kg": -1}, "mg_per_kg"),
    ({"mg_per_kg": 9}, "mg_per_kg"),
    ({"indication": "boredom"}, "indication"),
    ({"induction_sessions": 0}, "induction_sessions"),
    ({"route": "intranasal_esketamine", "mg_per_kg": None, "fixed_dose_mg": 70}, "fixed_dose_mg"),
    ({"dose": 5}, "dose"),
])
def test_bad_plan_input_names_the_field_and_writes_nothing(call, patient_id, change, field, count):
    with pytest.raises(ValidationFailed) as caught:
        call("create_plan", {**IV_PLAN, "patient_id": patient_id, **change})
    assert field in {e["field"] for e in caught.value.details}
    assert count("treatment_plans") == 0 and count("outbox") == 0


def test_esketamine_needs_rems_enrollment(call, patient_id):
    plan = {"patient_id": patient_id, "route": "intranasal_esketamine", "indication": "major_depressive_disorder",
            "fixed_dose_mg": 56}
    with pytest.raises(Conflict, match="REMS"):
        call("create_plan", plan)
    call("record_rems_enrollment", patient_id, {"enrollment_id": "REMS-123", "enrolled_on": "2026-11-01"})
    created = call("create_plan", plan)
    assert (created["drug"], created["fixed_dose_mg"], created["mg_per_kg"]) == ("esketamine", 56.0, None)


def test_unknown_plan(call):
    with pytest.raises(NotFound):
        call("get_plan", str(uuid.uuid4()))

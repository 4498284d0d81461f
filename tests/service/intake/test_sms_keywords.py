"""STOP and START texted by a patient, applied by intake to the consents it
keeps (notifications reads the text and sends ``sms.keyword_received``), on
the real broker and PostgreSQL: withdrawn or restored, audited, told with
``consent.recorded``, once, and never undone by an older text."""
import uuid

import pytest
from nameko.testing.services import entrypoint_waiter

from tests.support.calls import as_staff
from tests.support.events import publish_event, republish
from tests.support.intake import PATIENT
from tests.support.notifications import iso_in


@pytest.fixture
def call(intake):
    return as_staff(intake, "frontdesk (front_desk)")


@pytest.fixture
def patient(call):
    pid = call("register_patient", PATIENT)["patient_id"]
    call("record_consent", pid, {"kind": "sms", "method": "electronic"})
    return pid


def texted(intake, amqp, pid, keyword, received_at=None):
    with entrypoint_waiter(intake, "on_sms_keyword_received", timeout=10):
        return publish_event(amqp, "notifications", "sms.keyword_received", {
            "inbound_id": str(uuid.uuid4()), "patient_id": pid, "keyword": keyword,
            "received_at": received_at or iso_in(0)})


def sms_consents(call, pid):
    return [c for c in call("list_consents", pid) if c["kind"] == "sms"]


def test_stop_withdraws_the_sms_consent_audited_and_told_once(intake, call, patient, clinic_config, events):
    events.listen("intake")
    body = texted(intake, clinic_config["AMQP_URI"], patient, "stop")
    with entrypoint_waiter(intake, "on_sms_keyword_received", timeout=10):
        republish(clinic_config["AMQP_URI"], body)
    [consent] = sms_consents(call, patient)
    assert consent["withdrawn_at"] == body["data"]["received_at"]
    assert consent["withdrawn_by"] == "patient (sms keyword)"
    withdrawn = events.wait_for("consent.recorded", where=lambda e: e["data"]["status"] == "withdrawn")
    assert withdrawn["data"]["kind"] == "sms" and withdrawn["data"]["consent_id"] == consent["consent_id"]
    trail = call("list_record_access", patient)
    assert [e["actor"] for e in trail if e["action"] == "consent_withdrawal"] == ["patient (sms keyword)"]
    # Other consents are untouched.
    assert call("get_patient", patient)["consents"]["sms"] is False


def test_start_restores_it_as_given_by_text_and_a_second_start_changes_nothing(intake, call, patient, clinic_config):
    amqp = clinic_config["AMQP_URI"]
    texted(intake, amqp, patient, "stop")
    texted(intake, amqp, patient, "start")
    texted(intake, amqp, patient, "start")
    consents = sms_consents(call, patient)
    assert sorted(c["method"] for c in consents if c["withdrawn_at"]) == ["electronic"]
    [restored] = [c for c in consents if c["withdrawn_at"] is None]
    assert (restored["method"], restored["recorded_by"]) == ("sms_keyword", "patient (sms keyword)")
    assert call("get_patient", patient)["consents"]["sms"] is True


def test_an_older_text_does_not_undo_a_newer_one(intake, call, patient, clinic_config):
    amqp = clinic_config["AMQP_URI"]
    texted(intake, amqp, patient, "stop", received_at=iso_in(0))
    # A START sent before that STOP, handled after it (a retry).
    texted(intake, amqp, patient, "start", received_at=iso_in(-60))
    assert [c["withdrawn_at"] is not None for c in sms_consents(call, patient)] == [True]
    texted(intake, amqp, patient, "start", received_at=iso_in(1))
    # A STOP sent before that START.
    texted(intake, amqp, patient, "stop", received_at=iso_in(-30))
    assert [c["withdrawn_at"] is None for c in sms_consents(call, patient)] == [False, True]


def test_stop_without_a_consent_in_force_is_audited_and_changes_nothing(intake, call, clinic_config):
    pid = call("register_patient", PATIENT)["patient_id"]
    texted(intake, clinic_config["AMQP_URI"], pid, "stop")
    assert sms_consents(call, pid) == []
    assert "sms_stop_no_consent_in_force" in [e["action"] for e in call("list_record_access", pid)]

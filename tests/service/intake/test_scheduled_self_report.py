"""Self-reports the plan's schedule asks for (sessions' ``self_report.due``)
and the forms beyond PHQ-9 and GAD-7, through intake's entrypoints: one link
per due id, a C-SSRS "yes" or a check-in self-harm "yes" pages staff."""
import uuid

import pytest
import sqlalchemy as sa
from nameko.testing.services import entrypoint_waiter

from common import self_report_links as links
from tests.support.calls import as_staff
from tests.support.events import publish_event
from tests.support.intake import PATIENT


@pytest.fixture
def patient(intake):
    return as_staff(intake, "frontdesk (front_desk)")("register_patient", PATIENT)["patient_id"]


@pytest.fixture
def due(intake, clinic_config):
    """Publish a ``self_report.due`` as sessions would and wait for intake's handler."""
    def due(data, **options):
        with entrypoint_waiter(intake, "on_self_report_due", timeout=10):
            return publish_event(clinic_config["AMQP_URI"], "sessions", "self_report.due", data, **options)
    return due


def due_data(patient_id, questionnaire="phq9", due_id=None):
    return {"patient_id": patient_id, "plan_id": str(uuid.uuid4()),
            "due_id": due_id or f"before:{uuid.uuid4()}:{questionnaire}", "questionnaire": questionnaire}


def requests(databases):
    with databases.engine("intake").connect() as connection:
        return connection.execute(sa.text("SELECT * FROM self_report_requests")).mappings().all()


def test_a_due_form_is_sent_like_a_staff_request_once_per_due_id(intake, patient, due, events, databases):
    events.listen("intake")
    data = due_data(patient, "check_in")
    due(data)
    due(data)  # the same occasion announced again, under a new event id
    [request] = requests(databases)
    assert (request["questionnaire"], request["channel"]) == ("check_in", "any")
    assert request["requested_by"] == "self-report schedule (sessions)"
    requested = events.wait_for("self_report.requested")
    assert requested["data"]["request_id"] == request["request_id"]
    assert len(events.events("self_report.requested")) == 1
    trail = as_staff(intake, "dr.who (clinician)")("list_record_access", patient)
    assert [e["actor"] for e in trail if e["action"] == "self_report_requested"] == \
        ["self-report schedule (sessions)"]


def test_two_forms_of_one_occasion_are_two_links(patient, due, databases):
    appointment = str(uuid.uuid4())
    for form in ("phq9", "gad7"):
        due(due_data(patient, form, f"before:{appointment}:{form}"))
    assert sorted(r["questionnaire"] for r in requests(databases)) == ["gad7", "phq9"]


def answer(intake, questionnaire, patient, answers):
    request = as_staff(intake, "dr.who (clinician)")("request_self_report", patient, questionnaire, "any")
    token = links.token_for(links.settings(intake.config)["secret"], request["request_id"])
    patient_side = as_staff(intake, None)
    assert patient_side("open_self_report", token)["questionnaire"] == questionnaire
    return patient_side("submit_self_report", token, answers)


def test_a_cssrs_yes_by_link_pages_staff(intake, patient, events):
    events.listen("intake")
    result = answer(intake, "cssrs", patient, [1, 0, 0, 0, 0, 0])
    assert result["status"] == "submitted" and result["response"]["band"] == "low_risk"
    flagged = events.wait_for("patient.risk_flagged")
    assert (flagged["data"]["flags"], flagged["data"]["instrument"]) == (["cssrs_positive"], "cssrs")


def test_a_check_in_self_harm_yes_pages_staff_and_a_settled_one_does_not(intake, patient, events):
    events.listen("intake")
    settled = answer(intake, "check_in", patient, [0, 1, 0, 0, 0])
    assert settled["response"]["band"] == "settled" and settled["response"]["risk_flags"] == []
    urgent = answer(intake, "check_in", patient, [2, 2, 0, 0, 1])
    assert urgent["response"]["risk_flags"] == ["check_in_self_harm"]
    flagged = events.wait_for("patient.risk_flagged")
    assert (flagged["data"]["flags"], flagged["data"]["instrument"]) == (["check_in_self_harm"], "check_in")
    assert len(events.events("patient.risk_flagged")) == 1
    completed = events.wait_for("self_report.completed", count=2)["data"]
    assert completed["instrument"] == "check_in" and "answers" not in completed

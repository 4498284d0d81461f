"""Self-report by link through intake's entrypoints, on the real broker and
PostgreSQL: the request, the patient opening and answering it once, the
score stored and flagged like a staff-entered one."""
import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from common import self_report_links as links
from common.errors import ValidationFailed
from common.events import utcnow
from tests.support.calls import as_staff
from tests.support.intake import PATIENT, PHQ9_MODERATE


@pytest.fixture
def call(intake):
    return as_staff(intake, "dr.who (clinician)")


@pytest.fixture
def patient(call):
    return call("register_patient", PATIENT)["patient_id"]


def token_of(intake, request):
    return links.token_for(links.settings(intake.config)["secret"], request["request_id"])


def rows(databases, query):
    with databases.engine("intake").connect() as connection:
        return connection.execute(sa.text(query)).mappings().all()


def test_a_request_keeps_only_the_tokens_hash_and_its_event_no_token(intake, call, patient, events, databases):
    events.listen("intake")
    request = call("request_self_report", patient, "phq9", "email")
    assert request["questionnaire"] == "phq9" and request["used_at"] is None
    token = token_of(intake, request)
    requested = events.wait_for("self_report.requested")
    assert requested["data"] == {"patient_id": patient, "request_id": request["request_id"], "channel": "email",
                                 "expires_at": request["expires_at"]}
    stored = rows(databases, "SELECT * FROM self_report_requests")
    assert stored[0]["token_hash"] == links.token_hash(token)
    everything = json.dumps([dict(r) for r in rows(databases, "SELECT * FROM outbox")], default=str)
    everything += json.dumps([dict(r) for r in stored], default=str)
    assert token not in everything


def test_the_link_expires_after_72_hours_by_default(call, patient):
    request = call("request_self_report", patient, "gad7", "any")
    expires = links.settings({})["valid_hours"]
    assert expires == 72
    assert request["expires_at"] > (utcnow() + timedelta(hours=71)).isoformat()


def test_the_patient_answers_once_and_the_score_is_stored_as_self_reported(intake, call, patient, events):
    events.listen("intake")
    token = token_of(intake, call("request_self_report", patient, "phq9", "any"))
    assert intake_call(intake)("open_self_report", token)["status"] == "open"
    result = intake_call(intake)("submit_self_report", token, PHQ9_MODERATE)
    assert result["status"] == "submitted"
    assert result["response"]["total"] == sum(PHQ9_MODERATE) and result["response"]["band"] == "moderate"
    stored = call("list_questionnaires", patient, "phq9")
    assert [s["total"] for s in stored] == [sum(PHQ9_MODERATE)]
    completed = events.wait_for("self_report.completed")
    assert completed["data"]["total"] == sum(PHQ9_MODERATE) and completed["data"]["instrument"] == "phq9"
    assert intake_call(intake)("open_self_report", token) == {"status": "used"}
    assert intake_call(intake)("submit_self_report", token, PHQ9_MODERATE) == {"status": "used"}
    assert len(call("list_questionnaires", patient, "phq9")) == 1
    trail = call("list_record_access", patient)
    by_link = [e["action"] for e in trail if e["actor"] == "patient (self-report link)"]
    assert by_link == ["self_report_submitted", "self_report_opened"]
    assert call("list_self_reports", patient)[0]["used_at"] is not None


def test_an_expired_or_unknown_link_is_said_so(intake, call, patient, databases):
    token = token_of(intake, call("request_self_report", patient, "gad7", "sms"))
    with databases.engine("intake").begin() as connection:
        connection.execute(sa.text("UPDATE self_report_requests SET expires_at = :at"),
                           {"at": utcnow() - timedelta(minutes=1)})
    assert intake_call(intake)("open_self_report", token) == {"status": "expired"}
    assert intake_call(intake)("submit_self_report", token, [0] * 7) == {"status": "expired"}
    assert intake_call(intake)("open_self_report", links.token_for("x", "y")) == {"status": "unknown"}
    assert intake_call(intake)("open_self_report", "../../etc/passwd") == {"status": "unknown"}


def test_item9_pages_staff_through_the_risk_flag(intake, call, patient, events):
    events.listen("intake")
    token = token_of(intake, call("request_self_report", patient, "phq9", "any"))
    intake_call(intake)("submit_self_report", token, [0, 0, 0, 0, 0, 0, 0, 0, 1])
    flagged = events.wait_for("patient.risk_flagged")
    assert flagged["data"]["flags"] == ["phq9_self_harm_thoughts"] and flagged["data"]["patient_id"] == patient
    assert "answers" not in flagged["data"]


def test_a_rise_of_five_since_the_last_score_pages_staff(intake, call, patient, events):
    events.listen("intake")
    call("submit_questionnaire", patient, {"instrument": "gad7", "answers": [1, 1, 0, 0, 0, 0, 0]})
    token = token_of(intake, call("request_self_report", patient, "gad7", "any"))
    result = intake_call(intake)("submit_self_report", token, [2, 2, 1, 1, 1, 0, 0])
    assert result["response"]["risk_flags"] == ["score_rise"]
    flagged = events.wait_for("patient.risk_flagged")
    assert flagged["data"]["flags"] == ["score_rise"] and flagged["data"]["instrument"] == "gad7"


def test_bad_answers_are_refused_and_the_link_stays_open(intake, call, patient, databases):
    token = token_of(intake, call("request_self_report", patient, "gad7", "any"))
    with pytest.raises(ValidationFailed):
        intake_call(intake)("submit_self_report", token, [0, 0, 9])
    assert rows(databases, "SELECT count(*) AS n FROM questionnaire_responses")[0]["n"] == 0
    assert intake_call(intake)("open_self_report", token)["status"] == "open"


@pytest.mark.parametrize("questionnaire, channel", [("pcl5", "any"), ("phq9", "pigeon")])
def test_staff_may_send_only_the_self_report_forms_by_email_or_sms(call, patient, databases, questionnaire, channel):
    with pytest.raises(ValidationFailed):
        call("request_self_report", patient, questionnaire, channel)
    assert rows(databases, "SELECT count(*) AS n FROM self_report_requests")[0]["n"] == 0


def test_a_request_retried_with_its_idempotency_key_sends_one_link(call, patient, databases, events):
    events.listen("intake")
    first = call("request_self_report", patient, "phq9", "any", "ask-1")
    assert call("request_self_report", patient, "phq9", "any", "ask-1") == first
    assert rows(databases, "SELECT count(*) AS n FROM self_report_requests")[0]["n"] == 1
    events.wait_for("self_report.requested")
    assert len(events.events("self_report.requested")) == 1


def intake_call(intake):
    """The patient pages call without a staff identity."""
    return as_staff(intake, None)

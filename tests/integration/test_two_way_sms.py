"""Two-way SMS on the real broker, with intake and notifications running and
the SMS provider stood in for (the ``sms`` fixture): the pre-visit message
goes out the day before and its YES or NO comes back as
``previsit.reply_received`` for the right appointment; HELP is answered;
STOP withdraws the SMS consent in intake (audited), is confirmed by one last
text, and later appointment messages go by SMS no more; START restores it.
A request the provider did not sign, a replayed one and an unknown sender
change nothing."""
import json
import re
import time
import uuid

import httpx
import sqlalchemy as sa
from nameko.testing.services import entrypoint_hook

from services.intake.service import IntakeService
from services.notifications.channels import sign
from services.notifications.service import NotificationsService
from services.notifications.two_way_sms import SIGNATURE_HEADER, TIMESTAMP_HEADER
from tests.conftest import web_address
from tests.support.calls import as_staff
from tests.support.events import publish_event
from tests.support.intake import PATIENT
from tests.support.notifications import appointment_facts, wait_until, zone_where_it_is

SECRET = "provider-secret"
PHONE = PATIENT["phone"]
# What no SMS may name: a drug, a condition, a score or a dose.
CLINICAL = re.compile(r"ketamine|esketamine|spravato|infusion|depress|ptsd|anxiety|phq|gad|score|dose|\bmg\b|"
                      r"F33|treatment.resistant|severe", re.IGNORECASE)


def test_texts_from_a_patient_change_consent_and_answer_the_previsit_message(start_service, sms, events, databases):
    events.listen("notifications", "intake")
    # Early afternoon on the patient's clock: an appointment 22 hours away is
    # tomorrow, and the day-before time (10:00) has passed, so the pre-visit
    # message goes now.
    zone = zone_where_it_is(14)
    intake = start_service(IntakeService)
    notifications = start_service(NotificationsService, NOTIFICATIONS={
        "SMS_URL": sms.url("/sms"), "SMS_WEBHOOK_SECRET": SECRET, "SCHEDULER_INTERVAL": 0.2,
        "QUIET_HOURS_START": "00:00", "QUIET_HOURS_END": "00:00",
        "CLINIC_DISPLAY_NAME": "Harbor Wellness", "CLINIC_PHONE": "+1 415 555 0100"})
    amqp = notifications.config["AMQP_URI"]
    staff = as_staff(intake, "frontdesk (front_desk)")
    pid = staff("register_patient", {**PATIENT, "time_zone": zone})["patient_id"]
    staff("record_consent", pid, {"kind": "sms", "method": "electronic"})

    def texts_with(words):
        return [r.json()["body"] for r in sms.requests("/sms") if words in r.json()["body"]]

    def post(body, message_id=None, secret=SECRET, sender=PHONE):
        raw = json.dumps({"message_id": message_id or f"SM{uuid.uuid4().hex}", "from": sender, "body": body}).encode()
        stamp = str(int(time.time()))
        return httpx.post(f"{web_address(notifications)}/sms/inbound", content=raw, timeout=10, headers={
            "Content-Type": "application/json", TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(secret, stamp, raw)})

    def notifications_rpc(method, *args):
        with entrypoint_hook(notifications, method) as hook:
            return hook(*args)

    def sms_consent_in_notifications():
        return notifications_rpc("get_preferences", pid)["sms"]["consented"]

    wait_until(lambda: texts_with("welcome, Ana"), 15, "the welcome text did not go out")

    # ---- the pre-visit message, the day before, and the patient's answers
    publish_event(amqp, "sessions", "appointment.scheduled", appointment_facts(pid, "appt-1", 22 * 3600))
    wait_until(lambda: texts_with("Reply YES"), 15, "the pre-visit text did not go out")
    [previsit] = texts_with("Reply YES")
    assert "no solid food for 6 hours before" in previsit and "clear liquids only until 2 hours before" in previsit
    assert "An adult must drive you home" in previsit and not CLINICAL.search(previsit)
    wait_until(lambda: notifications_rpc("list_messages", {"appointment_id": "appt-1", "kind": "previsit_instructions",
                                                           "status": "sent"})["items"], 10,
               "the pre-visit text was not recorded as sent")
    assert post("Yes").status_code == 200
    confirmed = events.wait_for("previsit.reply_received")
    assert {k: confirmed["data"][k] for k in ("appointment_id", "patient_id", "answer")} == {
        "appointment_id": "appt-1", "patient_id": pid, "answer": "confirmed"}
    assert post("NO").status_code == 200
    declined = events.wait_for("previsit.reply_received", count=2)
    assert (declined["data"]["appointment_id"], declined["data"]["answer"]) == ("appt-1", "declined")
    assert declined["data"]["reply_id"] != confirmed["data"]["reply_id"]

    # ---- HELP
    assert post("help").status_code == 200
    wait_until(lambda: texts_with("for help call"), 10, "HELP was not answered")
    assert texts_with("for help call") == [
        "Harbor Wellness: for help call +1 415 555 0100. Reply STOP to opt out, START to opt back in. "
        "Msg & data rates may apply."]

    # ---- a request the provider did not sign changes nothing
    refused = post("STOP", secret="guessed")
    assert refused.status_code == 401 and refused.headers["content-type"] == "application/problem+json"

    # ---- STOP: withdrawn in intake, audited, one last text
    assert post("STOP", message_id="SM-stop").status_code == 200
    events.wait_for("consent.recorded", where=lambda e: e["data"]["kind"] == "sms" and e["data"]["status"] == "withdrawn")
    [sms_consent] = [c for c in staff("list_consents", pid) if c["kind"] == "sms"]
    assert sms_consent["withdrawn_by"] == "patient (sms keyword)" and sms_consent["withdrawn_at"]
    assert ("consent_withdrawal", "patient (sms keyword)") in [
        (e["action"], e["actor"]) for e in staff("list_record_access", pid)]
    wait_until(lambda: texts_with("no more texts"), 10, "STOP was not confirmed")
    wait_until(lambda: sms_consent_in_notifications() is False, 10, "intake's withdrawal did not reach notifications")
    # The same request again: refused, nothing changes, still one confirmation.
    assert post("STOP", message_id="SM-stop").status_code == 409
    assert len(texts_with("no more texts")) == 1

    # ---- a later appointment is not texted about
    sent_before = len(sms.requests("/sms"))
    publish_event(amqp, "sessions", "appointment.scheduled", appointment_facts(pid, "appt-2", 2 * 3600 + 2))

    def settled():
        owed = notifications_rpc("list_messages", {"appointment_id": "appt-2", "channel": "sms"})["items"]
        return owed and all(m["status"] in ("skipped", "sent", "dead") for m in owed) and len(owed) >= 2
    wait_until(settled, 15, "the later appointment's texts were not settled")
    owed = notifications_rpc("list_messages", {"appointment_id": "appt-2", "channel": "sms"})["items"]
    assert {m["kind"] for m in owed} >= {"appointment_confirmation", "appointment_reminder"}
    assert {m["status"] for m in owed} == {"skipped"}
    assert len(sms.requests("/sms")) == sent_before

    # ---- START restores the consent, confirmed once
    assert post("Start").status_code == 200
    events.wait_for("consent.recorded", where=lambda e: e["data"]["kind"] == "sms" and e["data"]["status"] == "granted"
                    and e["data"]["consent_id"] != sms_consent["consent_id"])
    restored = [c for c in staff("list_consents", pid) if c["kind"] == "sms" and c["withdrawn_at"] is None]
    assert [c["method"] for c in restored] == ["sms_keyword"]
    wait_until(lambda: texts_with("texts are on again"), 10, "START was not confirmed")
    wait_until(lambda: sms_consent_in_notifications() is True, 10, "the restored consent did not reach notifications")

    # ---- an unknown number gets nothing and leaves an audit line without its words
    sent_before = len(sms.requests("/sms"))
    assert post("STOP wrong number, who is this?", sender="+12125550199").status_code == 200
    with databases.engine("notifications").connect() as connection:
        unknown = connection.execute(sa.text(
            "SELECT * FROM inbound_sms WHERE outcome = 'unknown_sender'")).mappings().all()
    assert [(row["keyword"], row["sender_hint"], row["patient_ids"]) for row in unknown] == [("other", "…0199", [])]
    assert "wrong number" not in json.dumps([dict(row) for row in unknown], default=str)
    # Every text sent so far was to the patient and named no treatment.
    assert {r.json()["to"] for r in sms.requests("/sms")} == {PHONE}
    assert not [r.json()["body"] for r in sms.requests("/sms") if CLINICAL.search(r.json()["body"])]
    assert len(sms.requests("/sms")) == sent_before
    answers = [m["kind"] for m in notifications_rpc("list_messages", {"limit": 100})["items"]
               if m["kind"].startswith("sms_")]
    assert sorted(answers) == ["sms_help_reply", "sms_opt_in_confirmation", "sms_opt_out_confirmation"]

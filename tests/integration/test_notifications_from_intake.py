"""The real intake service's events drive notifications: a consent brings
the welcome, a risk flag pages staff by MRN, a changed address is used."""
import sqlalchemy as sa
from nameko.testing.services import entrypoint_hook

from services.intake.service import IntakeService
from services.notifications.service import NotificationsService
from tests.support.calls import as_staff
from tests.support.events import publish_event
from tests.support.intake import PATIENT
from tests.support.notifications import SmtpServer, wait_until


def test_intake_events_reach_patients_and_staff(start_service, clinic_config, databases):
    smtp = SmtpServer().start()
    try:
        intake = start_service(IntakeService)
        notifications = start_service(NotificationsService, NOTIFICATIONS={
            **smtp.config(), "STAFF_ALERT_EMAILS": ["oncall@clinic.example"], "SCHEDULER_INTERVAL": 0.2,
            "QUIET_HOURS_START": "00:00", "QUIET_HOURS_END": "00:00", "CLINIC_NAME": "Harbor Wellness"})

        call = as_staff(intake, "frontdesk (front_desk)")

        def notifications_view(pid):
            with entrypoint_hook(notifications, "get_preferences") as hook:
                return hook(pid)

        def applied(event_type):
            with databases.engine("notifications").connect() as connection:
                return connection.execute(sa.text("SELECT count(*) FROM processed_events WHERE event_type = :t"),
                                          {"t": event_type}).scalar_one()

        patient = call("register_patient", PATIENT)
        pid = patient["patient_id"]
        call("record_consent", pid, {"kind": "email", "method": "electronic"})
        [welcome] = smtp.wait_for(1, where=lambda m: m["Subject"] == "Welcome to Harbor Wellness")
        assert welcome["To"] == "ana@example.com" and "Hello Ana" in welcome.get_content()

        call("submit_questionnaire", pid, {"instrument": "phq9", "answers": [2, 2, 2, 2, 2, 2, 2, 2, 1]})
        [alert] = smtp.wait_for(1, where=lambda m: m["To"] == "oncall@clinic.example")
        assert alert["Subject"] == f"URGENT: risk flag for {patient['mrn']}"
        text = alert.get_content()
        assert patient["mrn"] in text and "Ana" not in text and "Lopez" not in text and "severe" not in text

        call("update_patient", pid, {"email": "ana.new@example.com"})
        call("withdraw_consent", pid, {"kind": "email"})
        call("record_consent", pid, {"kind": "email", "method": "verbal"})
        wait_until(lambda: applied("consent.recorded") == 3 and applied("patient.updated") == 1, 10,
                   "intake's latest events were not applied")
        assert notifications_view(pid)["email"]["consented"] is True
        publish_event(clinic_config["AMQP_URI"], "billing", "invoice.issued", {
            "patient_id": pid, "invoice_id": "inv-1", "number": "INV-000001", "total_cents": 45000,
            "currency": "USD", "due_date": "2026-12-31", "issued_at": "2026-11-25T10:00:00Z"})
        [invoice] = smtp.wait_for(1, where=lambda m: m["Subject"].startswith("Invoice"))
        assert invoice["To"] == "ana.new@example.com"
        # Consent given again is not a second welcome.
        assert [m["To"] for m in smtp.messages() if m["Subject"].startswith("Welcome")] == ["ana@example.com"]
    finally:
        smtp.stop()

"""Two replicas of notifications on one database and one broker: every
event is handled once and every due message is sent once."""
import uuid

from nameko.testing.services import entrypoint_hook

from services.notifications.service import NotificationsService
from tests.support.events import publish_event, republish
from tests.support.notifications import HttpReceiver, SmtpServer, register_patient, wait_until


def test_two_replicas_send_each_message_exactly_once(start_service, clinic_config):
    amqp = clinic_config["AMQP_URI"]
    smtp = SmtpServer().start()
    receiver = HttpReceiver(secrets={"/hooks/ehr": "k"}).start()
    try:
        section = {**smtp.config(), "SMS_URL": receiver.url("/sms"),
                   "WEBHOOKS": [{"name": "ehr", "url": receiver.url("/hooks/ehr"), "secret": "k",
                                 "events": ["invoice.issued"]}],
                   "QUIET_HOURS_START": "00:00", "QUIET_HOURS_END": "00:00",
                   "SCHEDULER_INTERVAL": 0.1, "SCHEDULER_BATCH": 3, "RETRY_BASE_SECONDS": 0.2}
        first = start_service(NotificationsService, NOTIFICATIONS=section)
        start_service(NotificationsService, NOTIFICATIONS=section)
        pid = str(uuid.uuid4())
        register_patient(amqp, pid)

        def consented():
            with entrypoint_hook(first, "list_messages") as hook:
                return hook({"patient_id": pid, "kind": "welcome"})["total"] == 2
        wait_until(consented, 10, "the consents were not applied")
        invoices = 12
        for number in range(invoices):
            body = publish_event(amqp, "billing", "invoice.issued", {
                "patient_id": pid, "invoice_id": f"inv-{number}", "number": f"INV-{number:06d}", "total_cents": 1000,
                "currency": "USD", "due_date": "2026-12-31", "issued_at": "2026-11-25T10:00:00Z"})
            republish(amqp, body)  # each delivered twice, to whichever replica
        expected_emails = invoices + 1  # plus the welcome
        smtp.wait_for(expected_emails, timeout=20)
        receiver.wait_for(invoices + 1, "/sms", timeout=20)
        receiver.wait_for(invoices, "/hooks/ehr", timeout=20)

        def all_sent():
            with entrypoint_hook(first, "list_messages") as hook:
                page = hook({"status": "sent", "limit": 100})
            return page["total"] == 2 * expected_emails + invoices
        wait_until(all_sent, 10, "not every message was recorded as sent")
        import eventlet
        eventlet.sleep(1)
        subjects = [m["Subject"] for m in smtp.messages()]
        assert len(subjects) == expected_emails and len(set(subjects)) == expected_emails
        references = [r.json()["reference"] for r in receiver.requests("/sms")]
        assert len(references) == len(set(references)) == invoices + 1
        deliveries = [r.headers["X-Clinic-Delivery"] for r in receiver.requests("/hooks/ehr")]
        assert len(deliveries) == len(set(deliveries)) == invoices
        assert all(r.verified for r in receiver.requests("/hooks/ehr"))
    finally:
        receiver.stop()
        smtp.stop()

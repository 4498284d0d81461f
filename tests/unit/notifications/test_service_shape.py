"""Notifications is one nameko service composed of capability classes:
nameko finds exactly that service in services/notifications/service.py, its
RPC methods, event handlers and timers are the documented ones whichever
class holds them, and each capability module stays small enough to read in
one sitting."""
import inspect
from pathlib import Path

from nameko.cli.run import import_service
from nameko.events import EventHandler
from nameko.rpc import Rpc
from nameko.timer import Timer

from services.notifications import capabilities
from services.notifications.service import NotificationsService

RPC_METHODS = {
    "get_preferences", "set_preferences", "list_record_access", "list_messages", "list_dead_messages",
    "get_message", "resend", "export_fhir_communications",
}
# (producer, event type) → handler: the handler's name is part of its queue's name.
EVENT_HANDLERS = {
    ("intake", "patient.registered"): "on_patient_registered",
    ("intake", "patient.updated"): "on_patient_updated",
    ("intake", "consent.recorded"): "on_consent_recorded",
    ("intake", "patient.risk_flagged"): "on_patient_risk_flagged",
    ("intake", "self_report.requested"): "on_self_report_requested",
    ("sessions", "appointment.scheduled"): "on_appointment_scheduled",
    ("sessions", "course.booked"): "on_course_booked",
    ("sessions", "appointment.rescheduled"): "on_appointment_rescheduled",
    ("sessions", "appointment.cancelled"): "on_appointment_cancelled",
    ("sessions", "session.completed"): "on_session_completed",
    ("sessions", "session.vitals_alert"): "on_session_vitals_alert",
    ("billing", "invoice.issued"): "on_invoice_issued",
    ("billing", "payment.received"): "on_payment_received",
    ("billing", "invoice.overdue"): "on_invoice_overdue",
    ("billing", "refund.issued"): "on_refund_issued",
}
# relay_outbox comes from ClinicService, as in every service.
TIMERS = {"deliver_due", "deliver_urgent", "relay_outbox"}


def entrypoints(kind):
    return {(name, entrypoint) for name, method in inspect.getmembers(NotificationsService)
            for entrypoint in getattr(method, "nameko_entrypoints", ()) if isinstance(entrypoint, kind)}


def test_nameko_run_finds_the_notifications_service_alone():
    assert import_service("services.notifications.service") == [NotificationsService]


def test_the_rpc_methods_are_the_documented_ones():
    assert {name for name, _ in entrypoints(Rpc)} == RPC_METHODS
    documented = (Path(__file__).resolve().parents[3] / "docs" / "rpc" / "notifications.md").read_text()
    assert all(f"`{name}(" in documented for name in RPC_METHODS)


def test_each_event_is_handled_by_the_same_named_handler():
    handlers = {(e.source_service, e.event_type): name for name, e in entrypoints(EventHandler)}
    assert handlers == EVENT_HANDLERS


def test_the_delivery_timers_are_the_same():
    assert {name for name, _ in entrypoints(Timer)} == TIMERS


def test_each_capability_module_can_be_read_in_one_sitting():
    folder = Path(capabilities.__file__).parent
    sizes = {path.name: len(path.read_text().splitlines()) for path in folder.glob("*.py")}
    assert {"messages_owed.py", "preferences.py", "patient_messages.py", "staff_alerts.py", "delivery.py",
            "delivery_log.py", "self_report.py"} <= set(sizes)
    assert max(sizes.values()) < 300, sizes


def test_service_py_holds_only_the_composed_class():
    source = (Path(capabilities.__file__).parents[1] / "service.py").read_text()
    assert "@rpc" not in source and "@consumes" not in source and "def " not in source

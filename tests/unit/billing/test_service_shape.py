"""Billing is one nameko service composed of capability classes: nameko
finds exactly that service in services/billing/service.py, its RPC methods
and event handlers are the documented ones whichever class holds them, and
each capability module stays small enough to read in one sitting."""
import inspect
from pathlib import Path

from nameko.cli.run import import_service
from nameko.events import EventHandler
from nameko.rpc import Rpc

from services.billing import capabilities
from services.billing.service import BillingService

RPC_METHODS = {
    "add_charge", "void_charge", "list_charges", "list_fee_schedule", "issue_invoice", "get_invoice",
    "export_fhir_invoice", "list_invoices", "void_invoice", "record_payment", "refund_payment", "get_balance",
    "sell_package", "get_package", "list_packages", "refund_package", "list_record_access", "get_superbill",
    "render_superbill",
}
# (producer, event type) → handler: the handler's name is part of its queue's name.
EVENT_HANDLERS = {
    ("intake", "patient.registered"): "on_patient_registered",
    ("intake", "patient.updated"): "on_patient_updated",
    ("intake", "intake.approved"): "on_intake_approved",
    ("sessions", "session.completed"): "on_session_completed",
    ("sessions", "session.aborted"): "on_session_aborted",
    ("sessions", "appointment.cancelled"): "on_appointment_cancelled",
    ("sessions", "appointment.no_show"): "on_appointment_no_show",
    # Every billing process's own queue (BROADCAST): each drops its prices.
    ("billing", "fee_schedule.changed"): "on_fee_schedule_changed",
}


def entrypoints(kind):
    return {(name, entrypoint) for name, method in inspect.getmembers(BillingService)
            for entrypoint in getattr(method, "nameko_entrypoints", ()) if isinstance(entrypoint, kind)}


def test_nameko_run_finds_the_billing_service_alone():
    assert import_service("services.billing.service") == [BillingService]


def test_the_rpc_methods_are_the_documented_ones():
    assert {name for name, _ in entrypoints(Rpc)} == RPC_METHODS
    documented = (Path(__file__).resolve().parents[3] / "docs" / "rpc" / "billing.md").read_text()
    assert all(f"`{name}(" in documented for name in RPC_METHODS)


def test_each_event_is_handled_by_the_same_named_handler():
    handlers = {(e.source_service, e.event_type): name for name, e in entrypoints(EventHandler)}
    assert handlers == EVENT_HANDLERS


def test_each_capability_module_can_be_read_in_one_sitting():
    folder = Path(capabilities.__file__).parent
    sizes = {path.name: len(path.read_text().splitlines()) for path in folder.glob("*.py")}
    assert {"ledger.py", "charging.py", "invoicing.py", "payments.py", "packages.py", "superbills.py"} <= set(sizes)
    assert max(sizes.values()) < 300, sizes

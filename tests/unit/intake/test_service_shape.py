"""Intake is one nameko service composed of capability classes: nameko
finds exactly that service in services/intake/service.py, its RPC methods
are the documented ones whichever class holds them, and each capability
module stays small enough to read in one sitting."""
import inspect
from pathlib import Path

from nameko.cli.run import import_service
from nameko.events import EventHandler
from nameko.rpc import Rpc

from services.intake import capabilities
from services.intake.service import IntakeService

RPC_METHODS = {
    "register_patient", "update_patient", "get_patient", "find_patients", "list_record_access", "record_consent",
    "withdraw_consent", "list_consents", "record_medical_history", "get_medical_history", "submit_questionnaire",
    "list_questionnaires", "submit_intake", "screen_patient", "approve_intake", "decline_intake", "get_intake",
    "export_fhir", "request_self_report", "list_self_reports", "open_self_report", "submit_self_report",
}


def entrypoints(kind):
    return {(name, entrypoint) for name, method in inspect.getmembers(IntakeService)
            for entrypoint in getattr(method, "nameko_entrypoints", ()) if isinstance(entrypoint, kind)}


def test_nameko_run_finds_the_intake_service_alone():
    assert import_service("services.intake.service") == [IntakeService]


def test_the_rpc_methods_are_the_documented_ones():
    assert {name for name, _ in entrypoints(Rpc)} == RPC_METHODS
    documented = (Path(__file__).resolve().parents[3] / "docs" / "rpc" / "intake.md").read_text()
    assert all(f"`{name}(" in documented for name in RPC_METHODS)


def test_intake_consumes_the_texted_consent_keywords_and_the_self_report_schedule():
    # STOP and START texted to the clinic change the consents intake keeps;
    # sessions' schedule says when a self-report link is due.
    handlers = {(e.source_service, e.event_type): name for name, e in entrypoints(EventHandler)}
    assert handlers == {("notifications", "sms.keyword_received"): "on_sms_keyword_received",
                        ("sessions", "self_report.due"): "on_self_report_due"}


def test_each_capability_module_can_be_read_in_one_sitting():
    folder = Path(capabilities.__file__).parent
    sizes = {path.name: len(path.read_text().splitlines()) for path in folder.glob("*.py")}
    assert {"records.py", "patients.py", "consents_and_history.py", "questionnaires.py", "decisions.py",
            "record_access.py", "self_report.py", "sms_keywords.py"} <= set(sizes)
    assert max(sizes.values()) < 300, sizes


def test_service_py_holds_only_the_composed_class():
    source = (Path(capabilities.__file__).parents[1] / "service.py").read_text()
    assert "@rpc" not in source and "def " not in source

"""Sessions is one nameko service composed of capability classes: nameko
finds exactly that service in services/sessions/service.py, its RPC methods
and event handlers are the documented ones whichever class holds them, and
each capability module stays small enough to read in one sitting."""
import ast
import inspect
from pathlib import Path

from nameko.cli.run import import_service
from nameko.events import EventHandler
from nameko.rpc import Rpc

from services.sessions import capabilities
from services.sessions.service import SessionsService

RPC_METHODS = {
    "add_resource", "list_resources", "get_eligibility", "record_rems_enrollment", "create_plan", "update_plan",
    "get_plan", "list_plans", "book_appointment", "propose_course", "book_course", "reschedule_appointment",
    "cancel_appointment", "mark_no_show", "get_appointment", "list_appointments", "get_schedule",
    "find_free_slots", "check_in", "update_checklist", "start_session", "record_vitals", "record_observation",
    "record_side_effect", "complete_session", "abort_session", "sign_session", "add_addendum", "get_session",
    "export_fhir", "list_monitoring_forms", "submit_monitoring_form", "record_phq9", "get_course_summary",
    "list_record_access", "trajectory", "export_trajectory_fhir", "trajectory_chart",
    "list_front_desk_tasks", "get_front_desk_task", "close_front_desk_task", "get_retention_report",
}
# (producer, event type) → handler: the handler's name is part of its queue's name.
EVENT_HANDLERS = {
    ("intake", "intake.approved"): "on_intake_approved",
    ("intake", "intake.declined"): "on_intake_declined",
    ("intake", "consent.recorded"): "on_consent_recorded",
    ("intake", "patient.registered"): "on_patient_registered",
    ("intake", "patient.updated"): "on_patient_updated",
    ("intake", "self_report.completed"): "on_self_report_completed",
    ("intake", "questionnaire.scored"): "on_questionnaire_scored",
    ("notifications", "previsit.reply_received"): "on_previsit_reply",
}


def entrypoints(kind):
    return {(name, entrypoint) for name, method in inspect.getmembers(SessionsService)
            for entrypoint in getattr(method, "nameko_entrypoints", ()) if isinstance(entrypoint, kind)}


def test_nameko_run_finds_the_sessions_service_alone():
    assert import_service("services.sessions.service") == [SessionsService]


def test_the_rpc_methods_are_the_documented_ones():
    assert {name for name, _ in entrypoints(Rpc)} == RPC_METHODS
    documented = (Path(__file__).resolve().parents[3] / "docs" / "rpc" / "sessions.md").read_text()
    assert all(f"`{name}(" in documented for name in RPC_METHODS)


def test_each_event_is_handled_by_the_same_named_handler():
    handlers = {(e.source_service, e.event_type): name for name, e in entrypoints(EventHandler)}
    assert handlers == EVENT_HANDLERS


def test_service_py_holds_only_the_composed_class():
    module = inspect.getmodule(SessionsService)
    classes = [value for value in vars(module).values() if inspect.isclass(value)]
    assert classes == [SessionsService]


def test_each_capability_module_can_be_read_in_one_sitting():
    folder = Path(capabilities.__file__).parent
    sizes = {path.name: len(path.read_text().splitlines()) for path in folder.glob("*.py")}
    assert {"chart.py", "resources.py", "eligibility.py", "plans.py", "scheduling.py", "session_records.py",
            "discharge.py", "rems_forms.py", "outcomes.py", "self_reports.py"} <= set(sizes)
    assert max(sizes.values()) < 350, sizes


def test_each_module_of_the_service_stays_under_the_checks_limit():
    folder = Path(capabilities.__file__).parent.parent
    sizes = {path.name: len(path.read_text().splitlines()) for path in folder.glob("*.py")}
    assert {"domain.py", "dosing.py", "scheduling_rules.py", "monitoring.py"} <= set(sizes)
    assert max(sizes.values()) <= 400, sizes


def test_the_rules_are_reached_through_domain_whichever_module_holds_them():
    from services.sessions import domain, dosing, monitoring, scheduling_rules
    for module in (dosing, monitoring, scheduling_rules):
        tree = ast.parse(Path(module.__file__).read_text())
        defined = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
        defined |= {target.id for node in tree.body if isinstance(node, ast.Assign)
                    for target in node.targets if isinstance(target, ast.Name)}
        public = {name for name in defined if not name.startswith("_")}
        assert public and all(getattr(domain, name, None) is getattr(module, name) for name in public), \
            (module.__name__, sorted(name for name in public if not hasattr(domain, name)))

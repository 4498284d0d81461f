"""Intake, sessions and billing running together: an approved patient's
completed session is charged from sessions' real ``session.completed``,
invoiced and paid, and ``invoice.paid`` reaches the bus."""
from nameko.standalone.rpc import ClusterRpcProxy

from services.billing.service import BillingService
from services.intake.service import IntakeService
from services.sessions.service import SessionsService
from tests.support.billing import wait_until
from tests.support.intake import approved_patient
from tests.support.sessions import BASELINE, CHECKLIST, clinic_monday, clinic_time, discharge, iso, move_to_today


def test_a_completed_session_is_charged_invoiced_and_paid(start_service, clinic_config, events, databases):
    events.listen("billing")
    for service in (IntakeService, SessionsService, BillingService):
        start_service(service)
    with ClusterRpcProxy(clinic_config, context_data={"actor": "dr.who (clinician)"}) as rpc:
        pid = approved_patient(lambda method, *args: getattr(rpc.intake, method)(*args))["patient_id"]
        wait_until(lambda: rpc.sessions.get_eligibility(pid).get("eligible"))
        chair = rpc.sessions.add_resource({"kind": "chair", "name": "Chair 1"})["resource_id"]
        clinician = rpc.sessions.add_resource({"kind": "clinician", "name": "Dr A"})["resource_id"]
        plan = rpc.sessions.create_plan({"patient_id": pid, "route": "iv_infusion",
                                         "indication": "treatment_resistant_depression"})
        appointment = rpc.sessions.book_appointment({
            "plan_id": plan["plan_id"], "starts_at": iso(clinic_time(clinic_monday(), 9)),
            "chair_id": chair, "clinician_id": clinician})
        move_to_today(databases.engine("sessions"), appointment["appointment_id"])
        session = rpc.sessions.check_in(appointment["appointment_id"], CHECKLIST)
        rpc.sessions.start_session(session["session_id"], {"lot_number": "KET-2026-11"})
        rpc.sessions.record_vitals(session["session_id"], BASELINE)
        rpc.sessions.complete_session(session["session_id"], discharge())

        # 90791 from the approval; the session completed at once, so a push
        # (96374) rather than an infusion hour, plus 35 mg of ketamine.
        charges = wait_until(lambda: (lambda items: items if len(items) == 3 else None)(
            rpc.billing.list_charges(pid)["items"]))
        assert sorted((c["code"], c["units"]) for c in charges) == [("90791", 1), ("96374", 1), ("J3490", 35)]
        session_charges = [c for c in charges if c["source"] == "session"]
        assert {c["session_id"] for c in session_charges} == {session["session_id"]}
        assert {c["appointment_id"] for c in session_charges} == {appointment["appointment_id"]}

        invoice = rpc.billing.issue_invoice(pid, {})
        assert invoice["total_cents"] == 45000 + 15000 + 3500
        rpc.billing.record_payment(invoice["invoice_id"], {"amount_cents": invoice["total_cents"],
                                                           "method": "card", "reference": "ch_e2e"}, "e2e-1")
    paid = events.wait_for("invoice.paid")
    assert paid["data"]["invoice_id"] == invoice["invoice_id"] and paid["data"]["currency"] == "USD"

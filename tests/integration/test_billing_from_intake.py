"""Intake and billing running together: an approval raises the initial
consultation charge and registration gives billing the superbill facts."""
from datetime import date

from nameko.testing.services import entrypoint_hook

from services.billing.service import BillingService
from services.intake.service import IntakeService
from tests.support.billing import rpc_caller, wait_until
from tests.support.intake import approved_patient


def test_an_approved_intake_is_billed_as_an_initial_consultation(start_service):
    intake = start_service(IntakeService)
    billing = start_service(BillingService)

    def call_intake(method, *args):
        with entrypoint_hook(intake, method, context_data={"actor": "dr.who (clinician)"}) as hook:
            return hook(*args)

    patient = approved_patient(call_intake)
    call = rpc_caller(billing)
    charges = wait_until(lambda: call("list_charges", patient["patient_id"])["items"])
    assert [(c["code"], c["amount_cents"], c["date_of_service"]) for c in charges] == [
        ("90791", 45000, date.today().isoformat())]
    bill = wait_until(lambda: (lambda b: b if b["patient"]["name"] else None)(
        call("get_superbill", patient["patient_id"], {"from": "2026-01-01", "to": date.today().isoformat()})))
    assert bill["patient"]["name"] == "Ana Lopez" and bill["patient"]["mrn"] == patient["mrn"]
    assert bill["diagnosis_codes"] == ["F33.2"]

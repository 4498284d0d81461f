"""A create replayed from its Idempotency-Key hands out the patient's record
again, so it leaves a line in the patient's access log like the first call
did (``<action>_replayed``, the same actor), and still changes nothing."""
import pytest
import sqlalchemy as sa

from services.billing.service import BillingService
from services.intake.service import IntakeService
from tests.support.billing import new_id, rpc_caller
from tests.support.calls import as_staff
from tests.support.intake import PATIENT

CLINICIAN = "dr.who (clinician)"


def rows(databases, service, table):
    with databases.engine(service).connect() as connection:
        return connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


def trail(call, patient_id):
    return [(entry["action"], entry["actor"]) for entry in call("list_record_access", patient_id)]


@pytest.fixture
def intake(start_service):
    return as_staff(start_service(IntakeService), CLINICIAN)


@pytest.fixture
def billing(start_service):
    return rpc_caller(start_service(BillingService))


def test_an_intake_replay_is_in_the_patients_access_log(intake, databases):
    first = intake("register_patient", PATIENT, "reg-1")
    assert intake("register_patient", PATIENT, "reg-1") == first
    pid = first["patient_id"]
    consent = {"kind": "treatment", "method": "written"}
    assert intake("record_consent", pid, consent, "consent-1") == intake("record_consent", pid, consent, "consent-1")
    assert trail(intake, pid) == [
        ("consent_replayed", CLINICIAN), ("consent", CLINICIAN), ("create_replayed", CLINICIAN), ("create", CLINICIAN)]
    assert rows(databases, "intake", "patients") == 1
    assert rows(databases, "intake", "consents") == 1


def test_a_request_without_a_key_is_not_a_replay(intake):
    pid = intake("register_patient", PATIENT)["patient_id"]
    intake("register_patient", PATIENT)
    assert trail(intake, pid) == [("create", CLINICIAN)]


def test_a_billing_replay_is_in_the_patients_access_log(billing, databases):
    pid = new_id()
    charge = {"code": "99215", "date_of_service": "2026-11-20"}
    assert billing("add_charge", pid, charge, "charge-1") == billing("add_charge", pid, charge, "charge-1")
    invoice = billing("issue_invoice", pid, None, "invoice-1")
    assert billing("issue_invoice", pid, None, "invoice-1") == invoice
    payment = {"amount_cents": 5000, "method": "card", "reference": "ch_1"}
    paid = billing("record_payment", invoice["invoice_id"], payment, "pay-1")
    assert billing("record_payment", invoice["invoice_id"], payment, "pay-1") == paid
    refund = {"amount_cents": 1000, "reason": "goodwill"}
    refunded = billing("refund_payment", paid["payment"]["payment_id"], refund, "refund-1")
    assert billing("refund_payment", paid["payment"]["payment_id"], refund, "refund-1") == refunded
    assert [action for action, _ in trail(billing, pid)] == [
        "refund_replayed", "refund", "payment_replayed", "payment", "invoice_replayed", "invoice",
        "charge_replayed", "charge"]
    assert {actor for _, actor in trail(billing, pid)} == {"biller (billing)"}
    assert [rows(databases, "billing", table) for table in ("charges", "invoices", "payments", "refunds")] == [1, 1, 1, 1]

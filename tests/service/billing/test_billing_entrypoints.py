"""Billing through its entrypoints, on the real broker and PostgreSQL, with
the producers' events published by the test."""
from datetime import date, timedelta

import eventlet
import pytest
import sqlalchemy as sa

from common.errors import Conflict, NotFound, ValidationFailed
from services.billing.service import BillingService
from tests.support.billing import (
    completed_session, concurrently, new_id, publish, registered_patient, rpc_caller, scalar, wait_until,
)
from tests.support.events import republish


@pytest.fixture
def billing(start_service):
    return start_service(BillingService, BILLING={"CLINIC_NAME": "Calm Waters Clinic", "CLINIC_NPI": "1234567893",
                                                  "CLINIC_TAX_ID": "12-3456789", "OVERDUE_SCAN_SECONDS": 3600})


@pytest.fixture
def call(billing):
    return rpc_caller(billing)


def charges_of(call, patient_id, **criteria):
    return call("list_charges", patient_id, criteria)["items"]


def wait_for_charges(call, patient_id, count):
    return wait_until(lambda: (lambda items: items if len(items) >= count else None)(charges_of(call, patient_id)))


def counts(databases):
    return {table: scalar(databases, f"SELECT count(*) FROM {table}")
            for table in ("charges", "invoices", "payments", "refunds", "outbox", "idempotency_keys")}


# ------------------------------------------------------------------ charges

def test_fee_schedule_is_loaded_once_and_priced_by_date(billing, start_service, databases, call):
    loaded = scalar(databases, "SELECT count(*) FROM fee_prices")
    start_service(BillingService)  # a second replica loads the same file
    assert scalar(databases, "SELECT count(*) FROM fee_prices") == loaded
    now = {item["code"]: item for item in call("list_fee_schedule", "2026-06-01")["items"]}
    later = {item["code"]: item for item in call("list_fee_schedule", "2027-06-01")["items"]}
    assert (now["96365"]["price_cents"], later["96365"]["price_cents"]) == (30000, 32000)
    assert now["PKG-IV6"]["package"] == {"route": "iv_infusion", "sessions": 6}


def test_session_completed_to_invoice_paid(billing, call, events, databases):
    events.listen("billing")
    pid = new_id()
    publish(billing.config, "sessions", "session.completed",
            completed_session(pid, duration_minutes=100, dose_mg=34.6))
    charges = wait_for_charges(call, pid, 3)
    assert [(c["code"], c["units"], c["amount_cents"]) for c in charges] == [
        ("96365", 1, 30000), ("96366", 1, 10000), ("J3490", 35, 3500)]

    invoice = call("issue_invoice", pid, {})
    assert invoice["number"] == "INV-000001" and invoice["total_cents"] == 43500
    assert invoice["total_cents"] == sum(line["amount_cents"] for line in invoice["lines"])
    issued = events.wait_for("invoice.issued")
    assert issued["data"] == {"patient_id": pid, "invoice_id": invoice["invoice_id"], "number": "INV-000001",
                              "total_cents": 43500, "currency": "USD", "due_date": invoice["due_date"],
                              "issued_at": invoice["issued_at"]}

    first = call("record_payment", invoice["invoice_id"], {"amount_cents": 20000, "method": "cash"})
    assert first["invoice"]["status"] == "partially_paid" and first["invoice"]["balance_cents"] == 23500
    assert call("get_balance", pid)["balance_cents"] == 23500
    second = call("record_payment", invoice["invoice_id"],
                  {"amount_cents": 23500, "method": "card", "reference": "ch_3Nx0001"})
    assert second["invoice"]["status"] == "paid"
    paid = events.wait_for("invoice.paid")
    assert paid["data"]["invoice_id"] == invoice["invoice_id"] and paid["data"]["total_cents"] == 43500
    received = events.wait_for("payment.received", count=2)
    assert {"payment_id", "invoice_id", "number", "amount_cents", "currency", "method", "received_at"} <= set(
        received["data"])
    assert received["data"]["number"] == invoice["number"]
    assert call("get_balance", pid)["balance_cents"] == 0
    assert [c["status"] for c in charges_of(call, pid)] == ["invoiced"] * 3


def test_the_same_event_three_times_raises_one_charge(billing, call, databases):
    pid = new_id()
    body = publish(billing.config, "sessions", "session.completed", completed_session(pid))
    republish(billing.config["AMQP_URI"], body)
    republish(billing.config["AMQP_URI"], body)
    # Even a replay under a new event id does not bill the session again.
    publish(billing.config, "sessions", "session.completed", body["data"])
    wait_for_charges(call, pid, 2)
    wait_until(lambda: scalar(databases, "SELECT count(*) FROM processed_events") >= 2)
    eventlet.sleep(0.5)
    assert [c["code"] for c in charges_of(call, pid)] == ["96365", "J3490"]


def test_consultation_late_cancel_and_no_show_fees(billing, call):
    pid = new_id()
    config = billing.config
    publish(config, "intake", "intake.approved", {
        "patient_id": pid, "mrn": "MRN0000042", "decided_by": "dr.who", "decided_at": "2026-11-02T17:00:00Z",
        "screening_outcome": "eligible", "diagnosis_codes": ["F33.2"], "primary_condition": "trd",
        "weight_kg": 70, "scores": {}})
    late, early, missed = new_id(), new_id(), new_id()
    for appointment, is_late in ((late, True), (early, False)):
        publish(config, "sessions", "appointment.cancelled", {
            "patient_id": pid, "appointment_id": appointment, "starts_at": "2026-11-10T15:00:00Z",
            "cancelled_at": "2026-11-10T09:00:00Z", "late": is_late, "cancelled_by_role": "patient"})
    publish(config, "sessions", "appointment.no_show", {
        "patient_id": pid, "appointment_id": missed, "starts_at": "2026-11-12T15:00:00Z", "route": "iv_infusion"})
    charges = wait_for_charges(call, pid, 3)
    eventlet.sleep(0.3)
    assert sorted((c["code"], c["date_of_service"], c["amount_cents"]) for c in charges_of(call, pid)) == [
        ("90791", "2026-11-02", 45000), ("LATE-CANCEL", "2026-11-10", 10000), ("NO-SHOW", "2026-11-12", 15000)]
    assert {c["appointment_id"] for c in charges if c["code"] != "90791"} == {late, missed}


def test_a_no_show_for_a_session_that_took_place_is_not_charged(billing, call):
    pid, appointment = new_id(), new_id()
    # The no-show arrives first (a mistaken mark), then the session itself.
    publish(billing.config, "sessions", "appointment.no_show", {
        "patient_id": pid, "appointment_id": appointment, "starts_at": "2026-11-20T15:00:00Z", "route": "iv_infusion"})
    wait_for_charges(call, pid, 1)
    publish(billing.config, "sessions", "session.completed", completed_session(pid, appointment_id=appointment))
    wait_until(lambda: len(charges_of(call, pid, status="void")) == 1)
    assert [c["code"] for c in charges_of(call, pid, status="open")] == ["96365", "J3490"]


def test_an_aborted_session_is_billed_for_what_was_given(billing, call):
    pid = new_id()
    # An evening session in New York: the clinic's day, not the UTC day.
    aborted = {"patient_id": pid, "appointment_id": new_id(), "route": "iv_infusion", "drug": "ketamine",
               "started_at": "2026-11-21T01:00:00Z", "aborted_at": "2026-11-21T01:12:00Z",
               "reason_code": "vitals", "date_of_service": "2026-11-20"}
    publish(billing.config, "sessions", "session.aborted",
            {**aborted, "session_id": new_id(), "dose_mg": 35.0, "duration_minutes": 12})
    publish(billing.config, "sessions", "session.aborted",  # stopped before dosing: nothing to bill
            {**aborted, "session_id": new_id(), "dose_mg": None, "started_at": None, "duration_minutes": None})
    charges = wait_for_charges(call, pid, 2)
    eventlet.sleep(0.3)
    assert [(c["code"], c["units"], c["date_of_service"]) for c in charges_of(call, pid)] == [
        ("96374", 1, "2026-11-20"), ("J3490", 35, "2026-11-20")]
    assert len({c["session_id"] for c in charges}) == 1


def test_a_malformed_event_is_dead_lettered_and_charges_nothing(billing, call, databases):
    from common.deadletter_operations import list_dead_letters

    pid = new_id()
    publish(billing.config, "sessions", "session.completed", completed_session(pid, route="teleport"))
    letters = wait_until(lambda: list_dead_letters(billing.config["AMQP_URI"]))
    assert letters[0]["handler"] == "billing.on_session_completed" and "route" in letters[0]["error"]
    assert charges_of(call, pid) == []


# ---------------------------------------------------------- bad money inputs

@pytest.mark.parametrize("payment, field", [
    ({"amount_cents": 0, "method": "cash"}, "amount_cents"),
    ({"amount_cents": -100, "method": "cash"}, "amount_cents"),
    ({"amount_cents": 10.5, "method": "cash"}, "amount_cents"),
    ({"amount_cents": 100, "method": "bitcoin"}, "method"),
    ({"amount_cents": 100, "method": "card"}, ""),
    ({"amount_cents": 100, "method": "card", "reference": "4111 1111 1111 1111"}, "reference"),
    ({"amount_cents": 999999, "method": "cash"}, "amount_cents"),
])
def test_bad_payments_get_clear_errors_and_write_nothing(billing, call, databases, payment, field):
    pid = new_id()
    call("add_charge", pid, {"code": "99214", "date_of_service": "2026-11-20"})
    invoice = call("issue_invoice", pid)
    before = counts(databases)
    with pytest.raises(ValidationFailed) as caught:
        call("record_payment", invoice["invoice_id"], payment, "key-" + new_id())
    assert field in {e["field"] for e in caught.value.details}
    assert counts(databases) == before


@pytest.mark.parametrize("charge, field", [
    ({"code": "99999", "date_of_service": "2026-11-20"}, "code"),
    ({"code": "PKG-IV6", "date_of_service": "2026-11-20"}, "code"),
    ({"code": "99214", "date_of_service": "2999-01-01"}, "date_of_service"),
    ({"code": "99214", "date_of_service": "2026-11-20", "units": 0}, "units"),
    ({"code": "99214", "date_of_service": "2026-11-20", "price_cents": 1}, "price_cents"),
])
def test_bad_charges_are_named_and_not_written(billing, call, databases, charge, field):
    with pytest.raises(ValidationFailed) as caught:
        call("add_charge", new_id(), charge)
    assert field in {e["field"] for e in caught.value.details}
    assert scalar(databases, "SELECT count(*) FROM charges") == 0


def test_unknown_and_void_invoices_and_refunds_above_what_was_paid(billing, call, databases):
    with pytest.raises(NotFound):
        call("record_payment", new_id(), {"amount_cents": 100, "method": "cash"})
    pid = new_id()
    call("add_charge", pid, {"code": "99214", "date_of_service": "2026-11-20"})
    invoice = call("issue_invoice", pid)
    payment = call("record_payment", invoice["invoice_id"], {"amount_cents": 5000, "method": "cash"})["payment"]
    before = counts(databases)
    with pytest.raises(ValidationFailed) as caught:
        call("refund_payment", payment["payment_id"], {"amount_cents": 5001, "reason": "duplicate charge"})
    assert caught.value.details[0]["field"] == "amount_cents"
    with pytest.raises(NotFound):
        call("refund_payment", new_id(), {"amount_cents": 1, "reason": "duplicate charge"})
    with pytest.raises(Conflict):  # money on it: refund first
        call("void_invoice", invoice["invoice_id"], {"reason": "wrong patient"})
    assert counts(databases) == before

    call("refund_payment", payment["payment_id"], {"amount_cents": 5000, "reason": "wrong patient"})
    voided = call("void_invoice", invoice["invoice_id"], {"reason": "wrong patient"})
    assert voided["status"] == "void" and voided["number"] == invoice["number"]
    before = counts(databases)
    with pytest.raises(Conflict):
        call("record_payment", invoice["invoice_id"], {"amount_cents": 100, "method": "cash"})
    assert counts(databases) == before
    # Its charge is open again, and the next invoice takes the next number.
    again = call("issue_invoice", pid)
    assert again["number"] == "INV-000002" and again["total_cents"] == invoice["total_cents"]


def test_invoices_are_numbered_without_gaps_under_concurrency(billing, call):
    patients = [new_id() for _ in range(8)]
    for pid in patients:
        call("add_charge", pid, {"code": "99214", "date_of_service": "2026-11-20"})
    numbers = [invoice["number"] for invoice in concurrently(billing.config, "issue_invoice",
                                                             [(pid,) for pid in patients])]
    assert sorted(numbers) == [f"INV-{n:06d}" for n in range(1, 9)]


def test_issued_invoices_keep_their_prices(start_service, databases):
    # A price added behind the service's back is seen once its copy of the
    # fee schedule is refreshed: here, at every use.
    call = rpc_caller(start_service(BillingService, BILLING={"FEE_SCHEDULE_REFRESH_SECONDS": 0.001}))
    pid = new_id()
    call("add_charge", pid, {"code": "99214", "date_of_service": "2026-11-20"})
    invoice = call("issue_invoice", pid)
    with databases.engine("billing").begin() as connection:
        connection.execute(sa.text("INSERT INTO fee_prices (code, kind, description, unit, price_cents, currency,"
                                   " effective_from, loaded_at) VALUES ('99214', 'cpt', 'visit', 'visit', 99900,"
                                   " 'USD', '2026-11-01', now())"))
    assert call("get_invoice", invoice["invoice_id"])["total_cents"] == 22000
    assert call("add_charge", pid, {"code": "99214", "date_of_service": "2026-11-21"})["amount_cents"] == 99900


# -------------------------------------------------------------- idempotency

def test_a_retried_payment_with_the_same_key_records_one_payment(billing, call, databases, events):
    events.listen("billing")
    pid = new_id()
    call("add_charge", pid, {"code": "99215", "date_of_service": "2026-11-20"})
    invoice = call("issue_invoice", pid)
    payment = {"amount_cents": 10000, "method": "card", "reference": "ch_retry"}
    first = call("record_payment", invoice["invoice_id"], payment, "pay-123")
    again = call("record_payment", invoice["invoice_id"], payment, "pay-123")
    assert again == first
    # Two retries racing each other: still one payment.
    raced = concurrently(billing.config, "record_payment", [(invoice["invoice_id"], payment, "pay-456")] * 4)
    assert all(r["payment"]["payment_id"] == raced[0]["payment"]["payment_id"] for r in raced)
    assert scalar(databases, "SELECT count(*) FROM payments") == 2
    with pytest.raises(ValidationFailed, match="pay-123"):  # the same key for another request
        call("record_payment", invoice["invoice_id"], {**payment, "amount_cents": 500}, "pay-123")
    refund = {"amount_cents": 2500, "reason": "goodwill"}
    first_refund = call("refund_payment", first["payment"]["payment_id"], refund, "refund-1")
    assert call("refund_payment", first["payment"]["payment_id"], refund, "refund-1") == first_refund
    assert scalar(databases, "SELECT count(*) FROM refunds") == 1
    events.wait_for("refund.issued")
    eventlet.sleep(0.3)
    assert len(events.events("payment.received")) == 2


# ---------------------------------------------------------------- packages

def test_a_package_is_consumed_then_its_unused_sessions_refunded(billing, call, events):
    events.listen("billing")
    pid = new_id()
    package = call("sell_package", pid, {"code": "PKG-IV6"})
    assert (package["sessions_remaining"], package["price_cents"]) == (6, 240000)
    sale_invoice = call("issue_invoice", pid)
    call("record_payment", sale_invoice["invoice_id"], {"amount_cents": 240000, "method": "card", "reference": "ch_pkg"})

    for day in (20, 23):
        publish(billing.config, "sessions", "session.completed",
                completed_session(pid, date_of_service=f"2026-11-{day}"))
    wait_until(lambda: call("get_package", package["package_id"])["sessions_used"] == 2)
    seen = call("get_package", package["package_id"])
    assert seen["sessions_remaining"] == 4 and len(seen["uses"]) == 2
    # Covered charges are not owed; invoiced, they are settled by package credit.
    assert call("get_balance", pid)["balance_cents"] == 0
    covered = call("issue_invoice", pid)
    assert covered["status"] == "paid" and [p["method"] for p in covered["payments"]] == ["package_credit"]

    refunded = call("refund_package", package["package_id"], {"reason": "moving away"}, "pkg-refund-1")
    assert refunded["package"]["status"] == "refunded" and refunded["package"]["sessions_remaining"] == 0
    assert sum(r["amount_cents"] for r in refunded["refunds"]) == 160000
    assert call("refund_package", package["package_id"], {"reason": "moving away"}, "pkg-refund-1") == refunded
    assert call("get_invoice", sale_invoice["invoice_id"])["status"] == "paid"
    assert events.wait_for("refund.issued")["data"]["amount_cents"] == 160000
    with pytest.raises(Conflict):
        call("refund_package", package["package_id"], {"reason": "again"})
    # The next session is billed normally.
    publish(billing.config, "sessions", "session.completed", completed_session(pid, date_of_service="2026-11-26"))
    wait_until(lambda: call("get_balance", pid)["uninvoiced_charges_cents"] == 33500)


# ------------------------------------------------------- overdue, superbill

def test_overdue_invoices_are_announced_once_per_due_date(billing, start_service, call, databases, events):
    events.listen("billing")
    pid = new_id()
    call("add_charge", pid, {"code": "99214", "date_of_service": "2026-11-20"})
    invoice = call("issue_invoice", pid)
    call("record_payment", invoice["invoice_id"], {"amount_cents": 2000, "method": "cash"})
    past_due = date.today() - timedelta(days=3)
    with databases.engine("billing").begin() as connection:
        connection.execute(sa.text("UPDATE invoices SET due_date = :due"), {"due": past_due})
    other = start_service(BillingService, BILLING={"OVERDUE_SCAN_SECONDS": 3600})
    # Both replicas' timers at once, then again: one notice.
    pool = eventlet.GreenPool()
    flagged = list(pool.imap(lambda c: rpc_caller(c)("flag_overdue_invoices"), [billing, other]))
    flagged.append(call("flag_overdue_invoices"))
    assert sorted(flagged) == [0, 0, 1]
    overdue = events.wait_for("invoice.overdue")
    assert overdue["data"]["balance_cents"] == 20000 and overdue["data"]["days_overdue"] == 3
    assert overdue["data"]["due_date"] == past_due.isoformat()
    assert call("list_invoices", {"overdue": True})["total"] == 1
    eventlet.sleep(0.3)
    assert len(events.events("invoice.overdue")) == 1


def test_superbill_as_json_and_html(billing, call, databases):
    pid = new_id()
    publish(billing.config, "intake", "patient.registered", registered_patient(pid))
    # An older update arriving late must not overwrite the newer facts.
    publish(billing.config, "intake", "patient.updated",
            registered_patient(pid, family_name="Stale", changed=["family_name"]),
            occurred_at="2020-01-01T00:00:00Z")
    publish(billing.config, "sessions", "session.completed", completed_session(pid, date_of_service="2026-11-20"))
    wait_for_charges(call, pid, 2)
    wait_until(lambda: scalar(databases, "SELECT count(*) FROM processed_events") == 3)
    invoice = call("issue_invoice", pid)
    call("record_payment", invoice["invoice_id"], {"amount_cents": 10000, "method": "insurance",
                                                   "reference": "CLM-77", "payer": "Aetna"})
    today = date.today().isoformat()
    bill = call("get_superbill", pid, {"from": "2026-11-01", "to": today})
    assert bill["clinic"] == {"name": "Calm Waters Clinic", "npi": "1234567893", "tax_id": "12-3456789",
                              "address": "", "phone": ""}
    assert bill["patient"]["name"] == "Ana Lopez" and bill["diagnosis_codes"] == ["F33.2"]
    assert [(line["code"], line["units"]) for line in bill["lines"]] == [("96365", 1), ("J3490", 35)]
    assert bill["totals"]["charges_cents"] == sum(line["charge_cents"] for line in bill["lines"]) == 33500
    assert bill["totals"]["payments_cents"] == 10000 and bill["dates_of_service"] == ["2026-11-20"]
    document = call("render_superbill", pid, {"from": "2026-11-01", "to": today})
    assert document["content_type"].startswith("text/html")
    assert "1234567893" in document["body"] and "F33.2" in document["body"] and "335.00" in document["body"]
    with pytest.raises(ValidationFailed):
        call("get_superbill", pid, {"from": "2026-12-01", "to": "2026-11-01"})


def test_every_access_to_a_patients_billing_record_is_audited(billing, call):
    pid = new_id()
    call("add_charge", pid, {"code": "99214", "date_of_service": "2026-11-20"})
    call("list_charges", pid)
    invoice = call("issue_invoice", pid)
    call("get_invoice", invoice["invoice_id"])
    call("record_payment", invoice["invoice_id"], {"amount_cents": 1000, "method": "cash"})
    call("get_balance", pid)
    trail = call("list_record_access", pid)
    assert [entry["action"] for entry in trail] == [
        "read_balance", "payment", "read_invoice", "invoice", "read_charges", "charge"]
    assert all(entry["actor"] for entry in trail)
    with pytest.raises(ValidationFailed):
        call("list_record_access", pid, "many")

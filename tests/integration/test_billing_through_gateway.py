"""HTTP → gateway → billing: roles, Idempotency-Key on payments and
refunds, problem+json errors and the printable superbill."""
import httpx
import pytest
import sqlalchemy as sa

from gateway.service import GatewayService
from services.billing.service import BillingService
from tests.conftest import web_address
from tests.support.billing import new_id

BILL = {"Authorization": "Bearer t-bill"}
CLIN = {"Authorization": "Bearer t-clin"}
FRONT = {"Authorization": "Bearer t-front"}


@pytest.fixture
def api(start_service):
    start_service(BillingService)
    gateway = start_service(GatewayService)
    with httpx.Client(base_url=web_address(gateway), timeout=15) as client:
        yield client


def count(databases, table):
    with databases.engine("billing").connect() as connection:
        return connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_invoice_and_a_retried_payment_over_http(api, databases):
    pid = new_id()
    charge = api.post(f"/api/v1/patients/{pid}/charges", json={"code": "99215", "date_of_service": "2026-11-20"},
                      headers=BILL)
    assert charge.status_code == 201, charge.text
    assert api.post(f"/api/v1/patients/{pid}/charges", json={"code": "99215", "date_of_service": "2026-11-20"},
                    headers=CLIN).status_code == 403
    invoice = api.post(f"/api/v1/patients/{pid}/invoices", json={}, headers=BILL).json()
    assert invoice["total_cents"] == 30000

    path = f"/api/v1/invoices/{invoice['invoice_id']}/payments"
    payment = {"amount_cents": 30000, "method": "card", "reference": "ch_http_1"}
    first = api.post(path, json=payment, headers={**FRONT, "Idempotency-Key": "k-1"})
    retry = api.post(path, json=payment, headers={**FRONT, "Idempotency-Key": "k-1"})
    assert (first.status_code, retry.status_code) == (201, 201)
    assert first.json() == retry.json() and first.json()["invoice"]["status"] == "paid"
    assert count(databases, "payments") == 1

    overpaid = api.post(path, json={"amount_cents": 1, "method": "cash"}, headers={**BILL, "Idempotency-Key": "k-2"})
    assert overpaid.status_code == 409 and overpaid.headers["content-type"] == "application/problem+json"
    negative = api.post(path, json={"amount_cents": -1, "method": "cash"}, headers=BILL)
    assert negative.status_code == 422 and negative.json()["errors"][0]["field"] == "amount_cents"
    assert api.post(f"/api/v1/invoices/{new_id()}/payments", json=payment, headers=BILL).status_code == 404

    refund_path = f"/api/v1/payments/{first.json()['payment']['payment_id']}/refunds"
    too_much = api.post(refund_path, json={"amount_cents": 30001, "reason": "error"}, headers=BILL)
    assert too_much.status_code == 422
    refund = {"amount_cents": 5000, "reason": "courtesy discount"}
    once = api.post(refund_path, json=refund, headers={**BILL, "Idempotency-Key": "r-1"})
    twice = api.post(refund_path, json=refund, headers={**BILL, "Idempotency-Key": "r-1"})
    assert once.status_code == 201 and once.json() == twice.json()
    assert count(databases, "refunds") == 1
    assert api.get(f"/api/v1/patients/{pid}/balance", headers=FRONT).json()["balance_cents"] == 5000
    listed = api.get("/api/v1/invoices", params={"patient_id": pid, "limit": 5}, headers=BILL).json()
    assert listed["total"] == 1 and listed["items"][0]["status"] == "partially_paid"


def test_printable_superbill(api):
    pid = new_id()
    api.post(f"/api/v1/patients/{pid}/charges", json={"code": "90791", "date_of_service": "2026-11-02"}, headers=BILL)
    html = api.get(f"/api/v1/patients/{pid}/superbill", params={"from": "2026-11-01", "to": "2026-11-30",
                                                                "format": "html"}, headers=BILL)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "90791" in html.text and "450.00" in html.text
    missing = api.get(f"/api/v1/patients/{pid}/superbill", headers=BILL)
    assert missing.status_code == 422 and {"from", "to"} <= {e["field"] for e in missing.json()["errors"]}

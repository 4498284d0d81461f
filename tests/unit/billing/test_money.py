"""Fee schedule versions, invoice arithmetic, payments, refunds, packages."""
from datetime import date
from pathlib import Path

import pytest
import yaml

from common.errors import Conflict, ValidationFailed
from services.billing.domain import (
    InvoiceStatus, PackageBalance, PackageStatus, PaymentMethod, Price, check_can_void, check_payment,
    check_refund, days_overdue, due_date, invoice_balance, invoice_total, line_amount, package_refund_cents,
    price_on, status_after_money, validate_fee_schedule,
)

PRICES = [
    Price("96365", date(2026, 1, 1), 30000, "USD", "IV infusion"),
    Price("96365", date(2027, 1, 1), 32000, "USD", "IV infusion"),
    Price("J3490", date(2026, 1, 1), 100, "USD", "ketamine"),
]


@pytest.mark.parametrize("on, cents", [
    (date(2026, 1, 1), 30000), (date(2026, 12, 31), 30000), (date(2027, 1, 1), 32000), (date(2030, 5, 5), 32000),
])
def test_the_price_in_force_on_the_date_of_service(on, cents):
    assert price_on(PRICES, "96365", on).price_cents == cents


def test_no_price_before_the_first_effective_date_or_for_an_unknown_code():
    with pytest.raises(Conflict):
        price_on(PRICES, "96365", date(2025, 12, 31))
    with pytest.raises(Conflict):
        price_on(PRICES, "99999", date(2026, 6, 1))


def test_the_shipped_fee_schedule_is_valid_and_whole_cents():
    path = Path(__file__).resolve().parents[3] / "services" / "billing" / "fee_schedule.yaml"
    rows = validate_fee_schedule(yaml.safe_load(path.read_text()))
    codes = {row["code"] for row in rows}
    assert {"90791", "99214", "99215", "96365", "96366", "96372", "J3490", "G2082", "G2083",
            "LATE-CANCEL", "NO-SHOW"} <= codes
    assert all(isinstance(row["price_cents"], int) and row["currency"] == "USD" for row in rows)
    assert any(row["package_sessions"] == 6 for row in rows)


@pytest.mark.parametrize("document, message", [
    ({"currency": "USD"}, "fees"),
    ({"fees": []}, "currency"),
    ({"currency": "USD", "fees": [{"code": "X", "description": "x", "prices": [
        {"effective_from": "2026-01-01", "price_cents": 10.5}]}]}, "whole number"),
    ({"currency": "USD", "fees": [{"code": "X", "description": "x", "prices": [
        {"effective_from": "2026-01-01", "price_cents": -1}]}]}, "whole number"),
    ({"currency": "USD", "fees": [{"code": "X", "description": "x", "prices": [
        {"effective_from": "2026-01-01", "price_cents": 1}, {"effective_from": "2026-01-01", "price_cents": 2}]}]},
     "two prices"),
    ({"currency": "USD", "fees": [{"code": "P", "description": "p", "package": {"route": "iv", "sessions": 6},
                                   "prices": [{"effective_from": "2026-01-01", "price_cents": 1}]}]}, "package"),
])
def test_a_broken_fee_schedule_is_refused_naming_the_problem(document, message):
    with pytest.raises(ValueError, match=message):
        validate_fee_schedule(document)


def test_line_amount_and_total_are_sums_of_integer_cents():
    amounts = [line_amount(1, 30000), line_amount(2, 10000), line_amount(35, 100)]
    assert amounts == [30000, 20000, 3500]
    assert invoice_total(amounts) == 53500
    with pytest.raises(ValidationFailed):
        line_amount(0, 100)
    with pytest.raises(Conflict):
        invoice_total([])


@pytest.mark.parametrize("total, adjustment, paid, status, balance", [
    (10000, 0, 0, InvoiceStatus.ISSUED, 10000),
    (10000, 0, 1, InvoiceStatus.PARTIALLY_PAID, 9999),
    (10000, 0, 9999, InvoiceStatus.PARTIALLY_PAID, 1),
    (10000, 0, 10000, InvoiceStatus.PAID, 0),
    (10000, 4000, 6000, InvoiceStatus.PAID, 0),
    (0, 0, 0, InvoiceStatus.PAID, 0),
])
def test_invoice_status_follows_the_money(total, adjustment, paid, status, balance):
    assert status_after_money(total, adjustment, paid) is status
    assert invoice_balance(total, adjustment, paid) == balance


@pytest.mark.parametrize("status, balance, amount, error, field", [
    (InvoiceStatus.ISSUED, 10000, 0, ValidationFailed, "amount_cents"),
    (InvoiceStatus.ISSUED, 10000, -5, ValidationFailed, "amount_cents"),
    (InvoiceStatus.ISSUED, 10000, 10001, ValidationFailed, "amount_cents"),
    (InvoiceStatus.VOID, 10000, 100, Conflict, None),
    (InvoiceStatus.PAID, 0, 100, Conflict, None),
])
def test_bad_payments_are_refused(status, balance, amount, error, field):
    with pytest.raises(error) as caught:
        check_payment(status, balance, amount)
    if field:
        assert caught.value.details[0]["field"] == field


@pytest.mark.parametrize("status, balance, amount", [
    (InvoiceStatus.ISSUED, 10000, 1), (InvoiceStatus.ISSUED, 10000, 10000),
    (InvoiceStatus.PARTIALLY_PAID, 500, 500),
])
def test_partial_and_exact_payments_are_accepted(status, balance, amount):
    check_payment(status, balance, amount)


@pytest.mark.parametrize("method, paid, refunded, amount, error", [
    (PaymentMethod.CARD, 10000, 0, 10001, ValidationFailed),
    (PaymentMethod.CARD, 10000, 6000, 4001, ValidationFailed),
    (PaymentMethod.CASH, 10000, 0, 0, ValidationFailed),
    (PaymentMethod.PACKAGE_CREDIT, 10000, 0, 100, Conflict),
    (PaymentMethod.CARD, 10000, 6000, 4000, None),
    (PaymentMethod.INSURANCE, 10000, 0, 1, None),
])
def test_refunds_never_exceed_what_the_payment_brought_in(method, paid, refunded, amount, error):
    if error is None:
        check_refund(method, paid, refunded, amount)
    else:
        with pytest.raises(error):
            check_refund(method, paid, refunded, amount)


def test_voiding_needs_the_money_refunded_first():
    check_can_void(InvoiceStatus.ISSUED, 0)
    with pytest.raises(Conflict):
        check_can_void(InvoiceStatus.PARTIALLY_PAID, 1)
    with pytest.raises(Conflict):
        check_can_void(InvoiceStatus.VOID, 0)


def test_due_date_and_days_overdue():
    assert due_date(date(2026, 11, 25), 30) == date(2026, 12, 25)
    assert days_overdue(date(2026, 12, 25), date(2026, 12, 24)) == 0
    assert days_overdue(date(2026, 12, 25), date(2027, 1, 4)) == 10


def test_a_package_is_consumed_one_session_at_a_time_then_used_up():
    package = PackageBalance(sessions_total=6, route="iv_infusion")
    for used in range(1, 7):
        assert package.covers("iv_infusion") and not package.covers("im_injection")
        package.consume()
        assert (package.sessions_used, package.remaining) == (used, 6 - used)
    assert package.status is PackageStatus.USED_UP
    assert not package.covers("iv_infusion")
    with pytest.raises(Conflict):
        package.consume()


def test_a_refunded_package_covers_nothing():
    package = PackageBalance(sessions_total=6, sessions_used=2, status=PackageStatus.REFUNDED)
    assert package.remaining == 0 and not package.covers("iv_infusion")


@pytest.mark.parametrize("price, total, used, refund", [
    (240000, 6, 0, 240000), (240000, 6, 2, 160000), (240000, 6, 5, 40000),
    (100000, 3, 1, 66666),  # rounded down: never more than was paid
])
def test_package_refund_is_the_unused_share_of_its_price(price, total, used, refund):
    assert package_refund_cents(price, total, used) == refund


def test_a_fully_used_package_has_nothing_to_refund():
    with pytest.raises(Conflict):
        package_refund_cents(240000, 6, 6)

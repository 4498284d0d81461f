"""Billing rules as plain code: which codes a clinical fact is billed as,
how prices are chosen by date, invoice arithmetic, payments, refunds and
prepaid packages. Nothing here touches a database or the broker."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from enum import Enum

from common.errors import Conflict, ValidationFailed, field_error

# --------------------------------------------------------------------------
# Configuration with the DESIGN.md defaults
# --------------------------------------------------------------------------

ROUTES = ("iv_infusion", "im_injection", "intranasal_esketamine", "oral_sublingual")


@dataclass(frozen=True)
class Clinic:
    clinic_id: str = "main"
    name: str = "Ketamine Clinic"
    npi: str = "0000000000"
    tax_id: str = "00-0000000"
    address: str = ""
    phone: str = ""


@dataclass(frozen=True)
class BillingRules:
    currency: str = "USD"
    invoice_prefix: str = "INV-"
    payment_terms_days: int = 30
    # J3490 is an unclassified drug code: the clinic decides what one unit
    # is. Per mg gives the payer the dose itself; per vial matches stock.
    ketamine_unit: str = "mg"
    ketamine_vial_mg: int = 500
    # CPT reports an infusion of 15 minutes or less as an IV push; an empty
    # code bills only the drug for such a short infusion.
    short_infusion_code: str = "96374"
    consultation_code: str = "90791"
    late_cancellation_code: str = "LATE-CANCEL"
    no_show_code: str = "NO-SHOW"
    oral_drug_code: str = "J8499"

    @classmethod
    def from_config(cls, section: dict) -> "BillingRules":
        defaults = cls()
        rules = cls(
            currency=str(section.get("CURRENCY", defaults.currency)).upper(),
            invoice_prefix=str(section.get("INVOICE_PREFIX", defaults.invoice_prefix)),
            payment_terms_days=int(section.get("PAYMENT_TERMS_DAYS", defaults.payment_terms_days)),
            ketamine_unit=str(section.get("KETAMINE_UNIT", defaults.ketamine_unit)),
            ketamine_vial_mg=int(section.get("KETAMINE_VIAL_MG", defaults.ketamine_vial_mg)),
            short_infusion_code=str(section.get("SHORT_INFUSION_CODE", defaults.short_infusion_code) or ""),
            late_cancellation_code=str(section.get("LATE_CANCELLATION_CODE", defaults.late_cancellation_code)),
            no_show_code=str(section.get("NO_SHOW_CODE", defaults.no_show_code)),
        )
        if rules.ketamine_unit not in ("mg", "vial"):
            raise ValueError("BILLING.KETAMINE_UNIT must be mg or vial")
        if rules.payment_terms_days < 0 or rules.ketamine_vial_mg <= 0:
            raise ValueError("BILLING.PAYMENT_TERMS_DAYS and KETAMINE_VIAL_MG must be positive")
        return rules


def clinic_from_config(section: dict) -> Clinic:
    defaults = Clinic()
    return Clinic(**{name: str(section.get(key, getattr(defaults, name))) for name, key in (
        ("clinic_id", "CLINIC_ID"), ("name", "CLINIC_NAME"), ("npi", "CLINIC_NPI"),
        ("tax_id", "CLINIC_TAX_ID"), ("address", "CLINIC_ADDRESS"), ("phone", "CLINIC_PHONE"),
    )})


# --------------------------------------------------------------------------
# Codes for a completed session
# --------------------------------------------------------------------------

FIRST_HOUR_MIN_MINUTES = 16
FIRST_HOUR_MAX_MINUTES = 90
ESKETAMINE_LOW_DOSE_MAX_MG = 56


@dataclass(frozen=True)
class ChargeLine:
    """A code and how many units of it; the price comes from the schedule."""

    code: str
    units: int = 1


@dataclass(frozen=True)
class CompletedSession:
    route: str
    drug: str
    dose_mg: float | None
    duration_minutes: int


def additional_infusion_hours(minutes: int) -> int:
    """96366 units: an extra hour counts once the infusion runs more than
    30 minutes past a full hour (91-150 minutes one, 151-210 two, ...)."""
    if minutes <= FIRST_HOUR_MAX_MINUTES:
        return 0
    return math.ceil((minutes - FIRST_HOUR_MAX_MINUTES) / 60)


def infusion_lines(minutes: int, rules: BillingRules) -> list[ChargeLine]:
    if minutes < FIRST_HOUR_MIN_MINUTES:
        return [ChargeLine(rules.short_infusion_code)] if rules.short_infusion_code else []
    lines = [ChargeLine("96365")]
    extra = additional_infusion_hours(minutes)
    if extra:
        lines.append(ChargeLine("96366", extra))
    return lines


def ketamine_units(dose_mg: float, rules: BillingRules) -> int:
    """Whole units of J3490, rounded up: a part vial or mg is still used."""
    if rules.ketamine_unit == "vial":
        return max(1, math.ceil(dose_mg / rules.ketamine_vial_mg))
    return max(1, math.ceil(round(dose_mg, 1)))


def session_lines(session: CompletedSession, rules: BillingRules) -> list[ChargeLine]:
    """The codes a completed session is billed as (before any package)."""
    if session.route not in ROUTES:
        raise field_error("route", f"must be one of {', '.join(ROUTES)}")
    if session.duration_minutes < 0:
        raise field_error("duration_minutes", "must not be negative")
    if session.route == "intranasal_esketamine":
        # G2082/G2083 include the esketamine supplied and the observation.
        if session.dose_mg is None:
            raise field_error("dose_mg", "an esketamine session needs its dose")
        return [ChargeLine("G2082" if session.dose_mg <= ESKETAMINE_LOW_DOSE_MAX_MG else "G2083")]
    if session.dose_mg is None or session.dose_mg <= 0:
        raise field_error("dose_mg", "a ketamine session needs a dose above zero")
    if session.route == "iv_infusion":
        lines = infusion_lines(session.duration_minutes, rules)
    elif session.route == "im_injection":
        lines = [ChargeLine("96372")]
    else:  # oral_sublingual: no administration code, only the oral drug
        return [ChargeLine(rules.oral_drug_code)]
    return lines + [ChargeLine("J3490", ketamine_units(session.dose_mg, rules))]


# --------------------------------------------------------------------------
# Fee schedule
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Price:
    code: str
    effective_from: date
    price_cents: int
    currency: str
    description: str


def price_on(prices: list[Price], code: str, on: date) -> Price:
    """The price in force on ``on``: the latest effective on or before it."""
    candidates = [p for p in prices if p.code == code and p.effective_from <= on]
    if not candidates:
        raise Conflict(f"the fee schedule has no price for {code} on {on.isoformat()}",
                       {"code": code, "date": on.isoformat()})
    return max(candidates, key=lambda p: p.effective_from)


def validate_fee_schedule(document: dict) -> list[dict]:
    """The fee schedule file as rows, or an error naming the bad entry."""
    if not isinstance(document, dict) or not isinstance(document.get("fees"), list):
        raise ValueError("the fee schedule must have a 'fees' list")
    currency = str(document.get("currency", "")).upper()
    if len(currency) != 3:
        raise ValueError("the fee schedule needs a three-letter 'currency'")
    rows, seen = [], set()
    for index, fee in enumerate(document["fees"]):
        where = f"fees[{index}]"
        code = str(fee.get("code") or "").strip()
        if not code or not fee.get("description") or not fee.get("prices"):
            raise ValueError(f"{where}: code, description and prices are required")
        package = fee.get("package") or {}
        if package and (package.get("route") not in ROUTES or int(package.get("sessions", 0)) < 1):
            raise ValueError(f"{where}: a package needs a known route and at least one session")
        for price in fee["prices"]:
            cents = price.get("price_cents")
            effective = price.get("effective_from")
            if not isinstance(cents, int) or isinstance(cents, bool) or cents < 0:
                raise ValueError(f"{where} {code}: price_cents must be a whole number of cents, not {cents!r}")
            if isinstance(effective, str):
                effective = date.fromisoformat(effective)
            if not isinstance(effective, date):
                raise ValueError(f"{where} {code}: effective_from must be a date")
            if (code, effective) in seen:
                raise ValueError(f"{where} {code}: two prices effective from {effective}")
            seen.add((code, effective))
            rows.append({
                "code": code, "kind": str(fee.get("kind", "cpt")), "description": str(fee["description"]),
                "unit": str(fee.get("unit", "service")), "price_cents": cents, "currency": currency,
                "effective_from": effective,
                "package_route": package.get("route"), "package_sessions": package.get("sessions"),
            })
    return rows


# --------------------------------------------------------------------------
# Invoices, payments, refunds
# --------------------------------------------------------------------------


class InvoiceStatus(str, Enum):
    ISSUED = "issued"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    VOID = "void"


class PaymentMethod(str, Enum):
    CARD = "card"
    CASH = "cash"
    INSURANCE = "insurance"
    # Applied by billing itself when a package covers invoiced charges.
    PACKAGE_CREDIT = "package_credit"


def line_amount(units: int, unit_price_cents: int) -> int:
    if units < 1:
        raise field_error("units", "must be at least 1")
    return units * unit_price_cents


def invoice_total(line_amounts: list[int]) -> int:
    """An invoice total is the sum of its lines, by construction."""
    if not line_amounts:
        raise Conflict("there are no open charges to invoice")
    return sum(line_amounts)


def invoice_balance(total_cents: int, adjustment_cents: int, paid_cents: int) -> int:
    return total_cents - adjustment_cents - paid_cents


def status_after_money(total_cents: int, adjustment_cents: int, paid_cents: int) -> InvoiceStatus:
    balance = invoice_balance(total_cents, adjustment_cents, paid_cents)
    if balance <= 0:
        return InvoiceStatus.PAID
    if paid_cents > 0:
        return InvoiceStatus.PARTIALLY_PAID
    return InvoiceStatus.ISSUED


def due_date(issued_on: date, terms_days: int) -> date:
    return issued_on + timedelta(days=terms_days)


def check_payment(status: InvoiceStatus, balance_cents: int, amount_cents: int) -> None:
    """Partial payments are fine; an overpayment is refused so no money is
    taken that the clinic would owe back."""
    if amount_cents <= 0:
        raise field_error("amount_cents", "must be a positive number of cents")
    if status is InvoiceStatus.VOID:
        raise Conflict("the invoice is void; it cannot be paid")
    if status is InvoiceStatus.PAID or balance_cents <= 0:
        raise Conflict("the invoice is already paid in full")
    if amount_cents > balance_cents:
        raise ValidationFailed(
            f"amount_cents {amount_cents} is more than the balance of {balance_cents}; overpayments are refused",
            [{"field": "amount_cents", "message": f"must not exceed the balance of {balance_cents}"}],
        )


def check_refund(method: PaymentMethod, paid_cents: int, refunded_cents: int, amount_cents: int) -> None:
    if amount_cents <= 0:
        raise field_error("amount_cents", "must be a positive number of cents")
    if method is PaymentMethod.PACKAGE_CREDIT:
        raise Conflict("package credit is not money; refund the package's unused sessions instead")
    refundable = paid_cents - refunded_cents
    if amount_cents > refundable:
        raise ValidationFailed(
            f"amount_cents {amount_cents} is more than the {refundable} still refundable on this payment",
            [{"field": "amount_cents", "message": f"must not exceed {refundable}"}],
        )


def check_can_void(status: InvoiceStatus, net_money_paid_cents: int) -> None:
    if status is InvoiceStatus.VOID:
        raise Conflict("the invoice is already void")
    if net_money_paid_cents > 0:
        raise Conflict("the invoice has payments; refund them before voiding it")


def days_overdue(due: date, today: date) -> int:
    return max(0, (today - due).days)


# --------------------------------------------------------------------------
# Prepaid packages
# --------------------------------------------------------------------------


class PackageStatus(str, Enum):
    ACTIVE = "active"
    USED_UP = "used_up"
    REFUNDED = "refunded"


@dataclass
class PackageBalance:
    sessions_total: int
    sessions_used: int = 0
    status: PackageStatus = PackageStatus.ACTIVE
    route: str = "iv_infusion"

    @property
    def remaining(self) -> int:
        return 0 if self.status is PackageStatus.REFUNDED else self.sessions_total - self.sessions_used

    def covers(self, route: str) -> bool:
        return self.status is PackageStatus.ACTIVE and self.route == route and self.remaining > 0

    def consume(self) -> None:
        if self.status is not PackageStatus.ACTIVE or self.remaining <= 0:
            raise Conflict("the package has no sessions left")
        self.sessions_used += 1
        if self.remaining == 0:
            self.status = PackageStatus.USED_UP


def package_refund_cents(price_cents: int, sessions_total: int, sessions_used: int) -> int:
    """Unused sessions back at the package's own per-session price, rounded
    down to the cent so the clinic never refunds more than was paid."""
    if sessions_used >= sessions_total:
        raise Conflict("every session of the package has been used; nothing to refund")
    return price_cents * (sessions_total - sessions_used) // sessions_total

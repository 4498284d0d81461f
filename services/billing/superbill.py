"""The superbill: the itemised statement a patient sends to an insurer, built
from billing's records of a period, and its printable HTML. Pure: the caller
reads the records; nothing here touches the database."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

import jinja2

from common.events import iso
from common.money import money

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).resolve().parent / "templates")),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
)


def build(*, clinic, currency: str, patient_id: str, patient, period, charges, payments, refunds,
          generated_at: datetime) -> dict:
    """``patient`` is billing's copy of the patient, or None when intake's
    facts have not arrived; ``charges`` exclude void ones and package sales,
    ``payments`` are money actually received (package credit shows on the
    lines it covers)."""
    lines = [{
        "date_of_service": c.date_of_service.isoformat(), "code": c.code, "description": c.description,
        "units": c.units, "unit_price_cents": c.unit_price_cents, "charge_cents": c.amount_cents,
        "clinician_id": c.clinician_id, "prepaid_by_package": c.package_id is not None,
    } for c in charges]
    return {
        "clinic": {"name": clinic.name, "npi": clinic.npi, "tax_id": clinic.tax_id,
                   "address": clinic.address, "phone": clinic.phone},
        "patient": {
            "patient_id": patient_id, "mrn": patient.mrn if patient else None,
            "name": " ".join(n for n in (patient.given_name, patient.family_name) if n) if patient else None,
            "date_of_birth": patient.date_of_birth.isoformat() if patient and patient.date_of_birth else None,
        },
        "diagnosis_codes": list(patient.diagnosis_codes or []) if patient else [],
        "period": {"from": period.date_from.isoformat(), "to": period.date_to.isoformat()},
        "currency": currency,
        "dates_of_service": sorted({line["date_of_service"] for line in lines}),
        "lines": lines,
        "payments": [{"received_at": iso(p.received_at), "method": p.method, "reference": p.reference,
                      "amount_cents": p.amount_cents} for p in payments],
        "refunds": [{"issued_at": iso(r.issued_at), "amount_cents": r.amount_cents} for r in refunds],
        "totals": {"charges_cents": sum(line["charge_cents"] for line in lines),
                   "prepaid_by_package_cents": sum(c.amount_cents for c in charges if c.package_id),
                   "payments_cents": sum(p.amount_cents for p in payments),
                   "refunds_cents": sum(r.amount_cents for r in refunds)},
        "generated_at": iso(generated_at),
    }


def render_html(bill: dict) -> dict:
    """The superbill as a printable HTML document, with its file name."""
    patient_id, period = bill["patient"]["patient_id"], bill["period"]
    return {"content_type": "text/html; charset=utf-8",
            "filename": f"superbill-{patient_id}-{period['from']}-{period['to']}.html",
            "body": TEMPLATES.get_template("superbill.html.j2").render(bill=bill, money=money)}

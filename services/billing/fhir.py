"""Read-only FHIR R4 export of one invoice as an Invoice resource: its status,
the patient as a reference only (the Patient resource is intake's), the
issue instant, a lineItem per invoice line coded with CPT, HCPCS or the
clinic's local codes, and the totals. Plain functions: no DB, no broker.

Money: the database holds integer cents; FHIR Money is a decimal in the
invoice's currency. No tax is charged, so totalNet equals totalGross. Staff
free text (the void reason) stays in billing."""
from __future__ import annotations

import re

from common.events import iso
from services.billing.models import Invoice, InvoiceLine

CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
LOCAL_CODES = "urn:clinic:codes"
INVOICE_NUMBER_SYSTEM = "urn:clinic:invoice-number"

# Billing's invoice status → FHIR InvoiceStatus (draft | issued | balanced |
# cancelled | entered-in-error). A partly paid invoice is still "issued".
STATUS = {
    "issued": "issued",
    "partially_paid": "issued",
    "paid": "balanced",
    "void": "cancelled",
}

# The fee schedule's `kind` of a code → the code system it belongs to.
# Clinic fees (late cancellation, no-show) and prepaid packages are local.
KIND_SYSTEMS = {"cpt": CPT, "hcpcs": HCPCS, "clinic_fee": LOCAL_CODES, "package": LOCAL_CODES}

_CPT_CODE = re.compile(r"^\d{4}[0-9A-Z]$")
_HCPCS_CODE = re.compile(r"^[A-V]\d{4}$")


def code_system(code: str, kind: str | None = None) -> str:
    """The system of a billing code: from its fee schedule kind when known,
    else from its shape (five characters, four digits first: CPT; a letter
    and four digits: HCPCS Level II); anything else is a local code."""
    if kind in KIND_SYSTEMS:
        return KIND_SYSTEMS[kind]
    if _CPT_CODE.match(code):
        return CPT
    if _HCPCS_CODE.match(code):
        return HCPCS
    return LOCAL_CODES


def money(cents: int, currency: str) -> dict:
    return {"value": cents / 100, "currency": currency}


def line_item(line: InvoiceLine, currency: str, kind: str | None = None) -> dict:
    system = code_system(line.code, kind)
    coding = {"system": system, "code": line.code}
    if system == LOCAL_CODES:
        # Our own code system, so our description is its display; CPT and
        # HCPCS displays are theirs, so the fee schedule's wording is text.
        coding["display"] = line.description
    return {
        "sequence": line.position,
        "chargeItemCodeableConcept": {"coding": [coding], "text": line.description},
        "priceComponent": [{
            "type": "base",
            "factor": line.units,
            "amount": money(line.amount_cents, currency),
        }],
    }


def invoice_resource(invoice: Invoice, kinds: dict[str, str] | None = None) -> dict:
    """``kinds`` maps each code to its fee schedule kind (cpt, hcpcs,
    clinic_fee, package); codes missing from it are classified by shape."""
    kinds = kinds or {}
    resource = {
        "resourceType": "Invoice",
        "id": invoice.invoice_id,
        "identifier": [{"use": "official", "system": INVOICE_NUMBER_SYSTEM, "value": invoice.display_number}],
        "status": STATUS[invoice.status],
        "subject": {"reference": f"Patient/{invoice.patient_id}"},
        "date": iso(invoice.issued_at),
        "lineItem": [line_item(line, invoice.currency, kinds.get(line.code)) for line in invoice.lines],
        "totalNet": money(invoice.total_cents, invoice.currency),
        "totalGross": money(invoice.total_cents, invoice.currency),
    }
    if not resource["lineItem"]:
        del resource["lineItem"]
    return resource

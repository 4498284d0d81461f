"""The FHIR Invoice export validates against the fhir.resources model (R4B,
the R4-compatible release fhir.resources ships)."""
from decimal import Decimal

import pytest
from fhir.resources.R4B.invoice import Invoice

from common.errors import NotFound, ValidationFailed
from services.billing import fhir
from services.billing.service import BillingService
from tests.support.billing import new_id, rpc_caller

CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
LOCAL = "urn:clinic:codes"


@pytest.fixture
def call(start_service):
    return rpc_caller(start_service(BillingService, BILLING={"OVERDUE_SCAN_SECONDS": 3600}))


def invoice_for(call, patient_id, charges):
    for code, units in charges:
        call("add_charge", patient_id, {"code": code, "units": units, "date_of_service": "2026-11-20"})
    return call("issue_invoice", patient_id, {})


def test_invoice_exports_as_valid_fhir(call):
    pid = new_id()
    invoice = invoice_for(call, pid, [("90791", 1), ("J3490", 35), ("G2082", 1), ("LATE-CANCEL", 1)])
    resource = call("export_fhir_invoice", invoice["invoice_id"])
    parsed = Invoice.model_validate(resource)

    assert parsed.id == invoice["invoice_id"] and parsed.status == "issued"
    assert resource["identifier"][0]["value"] == invoice["number"]
    assert resource["subject"] == {"reference": f"Patient/{pid}"}
    assert resource["date"] == invoice["issued_at"]
    coded = [(item["chargeItemCodeableConcept"]["coding"][0]["system"],
              item["chargeItemCodeableConcept"]["coding"][0]["code"]) for item in resource["lineItem"]]
    assert coded == [(CPT, "90791"), (HCPCS, "J3490"), (HCPCS, "G2082"), (LOCAL, "LATE-CANCEL")]
    assert [item["sequence"] for item in resource["lineItem"]] == [1, 2, 3, 4]
    for item, line in zip(parsed.lineItem, invoice["lines"]):
        [base] = item.priceComponent
        assert base.type == "base" and base.amount.currency == "USD"
        assert base.amount.value == Decimal(line["amount_cents"]) / 100 and base.factor == line["units"]
    total = Decimal(invoice["total_cents"]) / 100
    assert parsed.totalNet.value == parsed.totalGross.value == total == Decimal("1335")
    assert parsed.totalGross.currency == "USD"


def test_status_follows_the_money_and_void(call):
    pid = new_id()
    paid = invoice_for(call, pid, [("99214", 1)])
    call("record_payment", paid["invoice_id"], {"amount_cents": 22000, "method": "cash"})
    assert call("export_fhir_invoice", paid["invoice_id"])["status"] == "balanced"

    voided = invoice_for(call, pid, [("NO-SHOW", 1)])
    call("void_invoice", voided["invoice_id"], {"reason": "fee waived after a call"})
    resource = call("export_fhir_invoice", voided["invoice_id"])
    Invoice.model_validate(resource)
    assert resource["status"] == "cancelled"
    assert "fee waived" not in str(resource)  # staff free text stays in billing


def test_bad_ids(call):
    with pytest.raises(NotFound):
        call("export_fhir_invoice", new_id())
    with pytest.raises(ValidationFailed):
        call("export_fhir_invoice", "")


@pytest.mark.parametrize("code, kind, system", [
    ("96365", None, CPT), ("J8499", None, HCPCS), ("G2083", None, HCPCS), ("NO-SHOW", None, LOCAL),
    ("PKG-IV6", "package", LOCAL), ("99215", "cpt", CPT), ("J3490", "hcpcs", HCPCS),
])
def test_code_systems(code, kind, system):
    assert fhir.code_system(code, kind) == system

"""The superbill built from billing's records, without a database: what an
insurer needs (clinic, patient, codes, units, charges, payments) and totals
that add up."""
from datetime import date, datetime, timezone
from types import SimpleNamespace as Record

from services.billing import superbill
from services.billing.domain import Clinic
from services.billing.schemas import Period

PERIOD = Period.model_validate({"from": "2026-11-01", "to": "2026-11-30"})
PATIENT = Record(mrn="MRN0000007", given_name="Ana", family_name="Lopez", date_of_birth=date(1980, 2, 3),
                 diagnosis_codes=["F33.2"])
AT = datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc)


def charge(code, cents, day, package_id=None, units=1):
    return Record(date_of_service=date(2026, 11, day), code=code, description=f"{code} service", units=units,
                  unit_price_cents=cents // units, amount_cents=cents, clinician_id="dr.who", package_id=package_id)


def build(**changes):
    records = dict(
        clinic=Clinic(), currency="USD", patient_id="p-7", patient=PATIENT, period=PERIOD,
        charges=[charge("90791", 40000, 3), charge("96365", 30000, 10, package_id="pkg-1"),
                 charge("J3490", 3500, 10, units=35)],
        payments=[Record(received_at=AT, method="card", reference="ch_1", amount_cents=40000)],
        refunds=[Record(issued_at=AT, amount_cents=5000)], generated_at=AT)
    return superbill.build(**{**records, **changes})


def test_lines_dates_and_totals():
    bill = build()
    assert [line["code"] for line in bill["lines"]] == ["90791", "96365", "J3490"]
    assert bill["dates_of_service"] == ["2026-11-03", "2026-11-10"]
    assert bill["lines"][1]["prepaid_by_package"] is True and bill["lines"][2]["units"] == 35
    assert bill["totals"] == {"charges_cents": 73500, "prepaid_by_package_cents": 30000,
                              "payments_cents": 40000, "refunds_cents": 5000}
    assert bill["patient"] == {"patient_id": "p-7", "mrn": "MRN0000007", "name": "Ana Lopez",
                               "date_of_birth": "1980-02-03"}
    assert bill["diagnosis_codes"] == ["F33.2"]
    assert bill["period"] == {"from": "2026-11-01", "to": "2026-11-30"}
    assert bill["generated_at"] == "2026-11-20T15:00:00Z"


def test_a_patient_whose_details_have_not_arrived_is_named_by_id_only():
    bill = build(patient=None)
    assert bill["patient"] == {"patient_id": "p-7", "mrn": None, "name": None, "date_of_birth": None}
    assert bill["diagnosis_codes"] == []


def test_the_printable_document_shows_codes_and_amounts():
    document = superbill.render_html(build())
    assert document["content_type"] == "text/html; charset=utf-8"
    assert document["filename"] == "superbill-p-7-2026-11-01-2026-11-30.html"
    assert "90791" in document["body"] and "400.00" in document["body"] and "F33.2" in document["body"]


def test_the_document_escapes_what_staff_typed():
    bill = build(payments=[Record(received_at=AT, method="card", reference="<script>x</script>", amount_cents=1)])
    assert "<script>" not in superbill.render_html(bill)["body"]

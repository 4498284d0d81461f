"""Billing routes: fee schedule, charges, invoices, payments, refunds,
packages, balances and superbills. Payment and refund POSTs honour an
``Idempotency-Key`` header: a retried request is answered as the first was."""
from __future__ import annotations

from werkzeug.wrappers import Response

from common.errors import ValidationFailed
from gateway.http import ServiceRpc, api, fhir_json, idempotency_key, if_match, page_args
from services.billing import answers, schemas

BILLING = ("billing",)
# The front desk takes payments at check-in and answers "what do I owe?".
BILLING_AND_FRONT_DESK = ("billing", "front_desk")


class BillingRoutes:
    billing = ServiceRpc("billing")

    @api("GET", "/api/v1/fee-schedule", roles=BILLING_AND_FRONT_DESK, summary="Read the fee schedule in force",
         tag="billing", query=(("on_date", "string", "YYYY-MM-DD; today when omitted"),), answer=answers.FeeScheduleView)
    def fee_schedule(self, request, user, payload):
        return self.billing.list_fee_schedule(request.args.get("on_date"))

    # ---------------------------------------------------------- charges

    @api("GET", "/api/v1/patients/{patient_id}/charges", roles=BILLING, summary="List a patient's charges",
         tag="billing", paginated=True, query=(("status", "string", "open, invoiced or void"),), answer=answers.ChargePage)
    def list_charges(self, request, user, payload, patient_id):
        criteria = {**page_args(request), **({"status": request.args["status"]} if request.args.get("status") else {})}
        return self.billing.list_charges(patient_id, criteria)

    @api("POST", "/api/v1/patients/{patient_id}/charges", roles=BILLING,
         summary="Add a charge from the fee schedule (e.g. a 99214 visit)", tag="billing",
         body=schemas.ChargeInput, status=201, idempotent=True, answer=answers.ChargeView)
    def add_charge(self, request, user, payload, patient_id):
        return self.billing.add_charge(patient_id, payload, idempotency_key(request))

    @api("POST", "/api/v1/charges/{charge_id}/void", roles=BILLING, summary="Void an open charge with a reason",
         tag="billing", body=schemas.VoidInput, answer=answers.ChargeView)
    def void_charge(self, request, user, payload, charge_id):
        return self.billing.void_charge(charge_id, payload)

    # --------------------------------------------------------- invoices

    @api("POST", "/api/v1/patients/{patient_id}/invoices", roles=BILLING,
         summary="Issue an invoice for the patient's open charges", tag="billing",
         body=schemas.InvoiceInput, status=201, idempotent=True, answer=answers.InvoiceView)
    def issue_invoice(self, request, user, payload, patient_id):
        return self.billing.issue_invoice(patient_id, payload, idempotency_key(request))

    @api("GET", "/api/v1/invoices", roles=BILLING, summary="List invoices", tag="billing", paginated=True,
         query=(("patient_id", "string", "one patient's invoices"),
                ("status", "string", "issued, partially_paid, paid or void"),
                ("overdue", "boolean", "only (true) or no (false) overdue invoices")), answer=answers.InvoicePage)
    def list_invoices(self, request, user, payload):
        criteria = page_args(request)
        for name in ("patient_id", "status"):
            if request.args.get(name):
                criteria[name] = request.args[name]
        if request.args.get("overdue"):
            criteria["overdue"] = query_bool(request.args["overdue"], "overdue")
        return self.billing.list_invoices(criteria)

    @api("GET", "/api/v1/invoices/{invoice_id}", roles=BILLING_AND_FRONT_DESK,
         summary="Read an invoice with its lines, payments and refunds", tag="billing", conditional=True, answer=answers.InvoiceView)
    def get_invoice(self, request, user, payload, invoice_id):
        return self.billing.get_invoice(invoice_id)

    @api("GET", "/api/v1/invoices/{invoice_id}/fhir", roles=BILLING,
         summary="Export an invoice as a FHIR R4 Invoice resource", tag="fhir", fhir=True)
    def export_fhir_invoice(self, request, user, payload, invoice_id):
        return fhir_json(self.billing.export_fhir_invoice(invoice_id))

    @api("POST", "/api/v1/invoices/{invoice_id}/void", roles=BILLING, summary="Void an invoice with a reason",
         tag="billing", body=schemas.VoidInput, conditional=True, answer=answers.InvoiceView)
    def void_invoice(self, request, user, payload, invoice_id):
        return self.billing.void_invoice(invoice_id, payload, if_match=if_match(request))

    # ------------------------------------------------ payments, refunds

    @api("POST", "/api/v1/invoices/{invoice_id}/payments", roles=BILLING_AND_FRONT_DESK,
         summary="Record a payment (send an Idempotency-Key header)", tag="billing",
         body=schemas.PaymentInput, status=201, idempotent=True, answer=answers.PaymentRecorded)
    def record_payment(self, request, user, payload, invoice_id):
        return self.billing.record_payment(invoice_id, payload, idempotency_key(request))

    @api("POST", "/api/v1/payments/{payment_id}/refunds", roles=BILLING,
         summary="Refund part or all of a payment (send an Idempotency-Key header)", tag="billing",
         body=schemas.RefundInput, status=201, idempotent=True, answer=answers.RefundIssued)
    def refund_payment(self, request, user, payload, payment_id):
        return self.billing.refund_payment(payment_id, payload, idempotency_key(request))

    @api("GET", "/api/v1/patients/{patient_id}/balance", roles=BILLING_AND_FRONT_DESK,
         summary="Read what a patient owes", tag="billing", answer=answers.BalanceView)
    def balance(self, request, user, payload, patient_id):
        return self.billing.get_balance(patient_id)

    # --------------------------------------------------------- packages

    @api("POST", "/api/v1/patients/{patient_id}/packages", roles=BILLING, summary="Sell a prepaid package",
         tag="billing", body=schemas.PackageSale, status=201, idempotent=True, answer=answers.PackageSold)
    def sell_package(self, request, user, payload, patient_id):
        return self.billing.sell_package(patient_id, payload, idempotency_key(request))

    @api("GET", "/api/v1/patients/{patient_id}/packages", roles=BILLING_AND_FRONT_DESK,
         summary="List a patient's packages with the sessions remaining", tag="billing", answer=answers.PackageList)
    def list_packages(self, request, user, payload, patient_id):
        return {"items": self.billing.list_packages(patient_id)}

    @api("GET", "/api/v1/packages/{package_id}", roles=BILLING_AND_FRONT_DESK,
         summary="Read a package and the sessions drawn from it", tag="billing", answer=answers.PackageRecordView)
    def get_package(self, request, user, payload, package_id):
        return self.billing.get_package(package_id)

    @api("POST", "/api/v1/packages/{package_id}/refund", roles=BILLING,
         summary="Refund a package's unused sessions (send an Idempotency-Key header)", tag="billing",
         body=schemas.PackageRefundInput, status=201, idempotent=True, answer=answers.PackageRefunded)
    def refund_package(self, request, user, payload, package_id):
        return self.billing.refund_package(package_id, payload, idempotency_key(request))

    # -------------------------------------------------------- superbill

    @api("GET", "/api/v1/patients/{patient_id}/superbill", roles=BILLING,
         summary="Produce a superbill for a period, as JSON or printable HTML", tag="billing",
         query=(("from", "string", "first date of service, YYYY-MM-DD"),
                ("to", "string", "last date of service, YYYY-MM-DD"),
                ("format", "string", "json (default) or html")), answer=answers.SuperbillView, html=True)
    def superbill(self, request, user, payload, patient_id):
        period = {"from": request.args.get("from"), "to": request.args.get("to")}
        wanted = request.args.get("format", "json")
        if wanted == "json":
            return self.billing.get_superbill(patient_id, period)
        if wanted != "html":
            raise ValidationFailed("format must be json or html", [{"field": "format", "message": "json or html"}])
        document = self.billing.render_superbill(patient_id, period)
        response = Response(document["body"], status=200, content_type=document["content_type"])
        response.headers["Content-Disposition"] = f'inline; filename="{document["filename"]}"'
        return response


def query_bool(raw: str, name: str) -> bool:
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise ValidationFailed(f"{name} must be true or false", [{"field": name, "message": "must be true or false"}])

"""Every route, answered successfully, against the OpenAPI document: a walk
through the clinic over HTTP (a patient from registration to a signed
session, a course, billing from charge to refund, the messages) in which
each answer's body is validated against the schema the document declares
for its route and status, and its content type checked. The walk must reach
every route the gateway declares with a success, so a new route needs a
step here (the fuzz sweep covers the failures)."""
import json
import re
import uuid
from datetime import date, timedelta

import jsonschema_rs
import pytest
import sqlalchemy as sa

from gateway.http import ROUTES
from tests.integration.test_gateway_fuzz import as_role, clinic, records_to_aim_at  # noqa: F401 (fixture)
from tests.support.intake import GAD7_MILD, HISTORY, PATIENT, PHQ9_MODERATE
from tests.support.sessions import BASELINE, CHECKLIST, clinic_monday, clinic_time, discharge, iso, move_to_today

FRONT, CLIN, BILL, ADMIN = (as_role(role) for role in ("front_desk", "clinician", "billing", "admin"))


class Walk:
    def __init__(self, api, document):
        self.api = api
        self.document = document
        self.templates = [(spec.method, spec.path, re.compile("^" + re.sub(r"{\w+}", "[^/]+", spec.path) + "$"))
                          for spec in ROUTES]
        self.answered: set[tuple[str, str]] = set()

    def __call__(self, method, path, headers, expect=(200, 201), **kwargs):
        answer = self.api.request(method, path, headers=headers, **kwargs)
        assert answer.status_code in expect, f"{method} {path}: {answer.status_code} {answer.text[:400]}"
        template = self.route(method, path)
        declared = self.document["paths"][template][method.lower()]["responses"][str(answer.status_code)]
        media_type = answer.headers["content-type"].split(";")[0]
        assert media_type in declared["content"], f"{method} {template}: {media_type} is not declared"
        textual = media_type in ("text/html", "text/event-stream")
        if not textual:
            schema = {**declared["content"][media_type]["schema"], "components": self.document["components"]}
            errors = [f"{error.instance_path}: {error.message}" for error in
                      jsonschema_rs.Draft202012Validator(schema).iter_errors(answer.json())]
            assert errors == [], f"{method} {template} {answer.status_code}: {errors[:5]}"
        self.answered.add((method, template))
        return answer.text if textual else answer.json()

    def route(self, method, path):
        path = path.split("?")[0]
        matches = [template for m, template, pattern in self.templates if m == method and pattern.match(path)]
        # A fixed segment beats a parameter (/notifications/dead, /schedule/free-slots).
        matches.sort(key=lambda template: template.count("{"))
        assert matches, f"no route for {method} {path}"
        return matches[0]


def submitted_monitoring_form_target(databases, session_id, patient_id) -> str:
    """A Spravato monitoring form waiting for submission (esketamine's two
    hours of observation are not played out here)."""
    form_id = str(uuid.uuid4())
    with databases.engine("sessions").begin() as connection:
        connection.execute(sa.text(
            "INSERT INTO monitoring_forms (form_id, session_id, patient_id, session_date, due_on, content) "
            "VALUES (:form_id, :session_id, :patient_id, :day, :due, :content)"),
            {"form_id": form_id, "session_id": session_id, "patient_id": patient_id, "day": date.today(),
             "due": date.today() + timedelta(days=7), "content": json.dumps({"dose_mg": 56})})
    return form_id


@pytest.mark.timeout(600)
def test_every_route_answers_what_the_document_declares(clinic, databases):
    rpc, api, _ = clinic
    walk = Walk(api, api.get("/api/v1/openapi.json").json())
    ids = records_to_aim_at(rpc, api, databases)
    pid, sid = ids["patient_id"], ids["session_id"]

    # Intake, a second patient from registration to a decline.
    other = walk("POST", "/api/v1/patients", FRONT, json={**PATIENT, "given_name": "Bea"})
    oid = other["patient_id"]
    walk("GET", "/api/v1/patients", FRONT, params={"name": "lopez"})
    walk("GET", f"/api/v1/patients/{oid}", FRONT)
    walk("PATCH", f"/api/v1/patients/{oid}", FRONT, json={"phone": "+14155550177"})
    walk("POST", f"/api/v1/patients/{oid}/consents", FRONT, json={"kind": "treatment", "method": "written"})
    walk("POST", f"/api/v1/patients/{oid}/consents", FRONT, json={"kind": "sms", "method": "electronic"})
    walk("POST", f"/api/v1/patients/{oid}/consents/withdrawals", FRONT, json={"kind": "sms"})
    walk("GET", f"/api/v1/patients/{oid}/consents", FRONT)
    walk("PUT", f"/api/v1/patients/{oid}/medical-history", CLIN, json=HISTORY)
    walk("GET", f"/api/v1/patients/{oid}/medical-history", CLIN)
    walk("POST", f"/api/v1/patients/{oid}/questionnaires", FRONT, json={"instrument": "phq9", "answers": PHQ9_MODERATE})
    walk("POST", f"/api/v1/patients/{oid}/questionnaires", FRONT, json={"instrument": "gad7", "answers": GAD7_MILD})
    walk("GET", f"/api/v1/patients/{oid}/questionnaires", CLIN)
    walk("POST", f"/api/v1/patients/{oid}/intake/submission", FRONT)
    walk("POST", f"/api/v1/patients/{oid}/intake/screening", CLIN, json={"systolic": 120, "diastolic": 80})
    walk("GET", f"/api/v1/patients/{oid}/intake", FRONT)
    walk("POST", f"/api/v1/patients/{oid}/intake/decline", CLIN, json={"reason": "prefers another treatment"})
    walk("GET", f"/api/v1/patients/{pid}/fhir", CLIN)
    walk("POST", f"/api/v1/patients/{pid}/self-report-requests", FRONT, json={"questionnaire": "phq9"})
    walk("GET", f"/api/v1/patients/{pid}/self-report-requests", CLIN)
    third = walk("POST", "/api/v1/patients", FRONT, json={**PATIENT, "given_name": "Cal"})["patient_id"]
    walk("POST", f"/api/v1/patients/{third}/consents", FRONT, json={"kind": "treatment", "method": "written"})
    walk("PUT", f"/api/v1/patients/{third}/medical-history", CLIN, json=HISTORY)
    for instrument, answers in (("phq9", PHQ9_MODERATE), ("gad7", GAD7_MILD)):
        walk("POST", f"/api/v1/patients/{third}/questionnaires", FRONT,
             json={"instrument": instrument, "answers": answers})
    walk("POST", f"/api/v1/patients/{third}/intake/submission", FRONT)
    walk("POST", f"/api/v1/patients/{third}/intake/screening", CLIN, json={"systolic": 120, "diastolic": 80})
    walk("POST", f"/api/v1/patients/{third}/intake/approval", CLIN, json={"reason": "a good candidate"})

    # Sessions: resources, eligibility, the plan, a course, one appointment's moves.
    walk("GET", "/api/v1/resources", FRONT)
    chair = walk("POST", "/api/v1/resources", ADMIN, json={"kind": "chair", "name": "Chair 9"})["resource_id"]
    doctor = walk("POST", "/api/v1/resources", ADMIN, json={"kind": "clinician", "name": "Dr Z"})["resource_id"]
    walk("GET", f"/api/v1/patients/{pid}/eligibility", FRONT)
    walk("POST", f"/api/v1/patients/{pid}/rems-enrollment", CLIN,
         json={"enrollment_id": "REMS-123", "enrolled_on": date.today().isoformat()})
    walk("POST", "/api/v1/plans", CLIN, json={"patient_id": pid, "route": "im_injection",
                                              "indication": "treatment_resistant_depression"})
    plan_id = ids["plan_id"]
    walk("GET", f"/api/v1/plans/{plan_id}", FRONT)
    walk("PATCH", f"/api/v1/plans/{plan_id}", CLIN, json={"max_dose_mg": 70})
    walk("GET", f"/api/v1/patients/{pid}/plans", FRONT)
    monday = clinic_monday(weeks_ahead=4)
    course = {"first_starts_at": iso(clinic_time(monday, 13)), "chair_id": chair, "clinician_id": doctor,
              "sessions": 2}
    walk("POST", f"/api/v1/plans/{plan_id}/course/proposal", FRONT, json=course)
    booked = walk("POST", f"/api/v1/plans/{plan_id}/course", FRONT, json=course)["appointments"]
    walk("GET", f"/api/v1/plans/{plan_id}/appointments", FRONT)
    moving = booked[-1]["appointment_id"]
    walk("GET", f"/api/v1/appointments/{moving}", FRONT)
    walk("POST", f"/api/v1/appointments/{moving}/reschedule", FRONT,
         json={"starts_at": iso(clinic_time(monday + timedelta(days=4), 15))})
    walk("POST", f"/api/v1/appointments/{moving}/cancellation", FRONT)
    walk("GET", "/api/v1/schedule", FRONT, params={"date": monday.isoformat(), "include_cancelled": "true"})
    walk("GET", "/api/v1/schedule/free-slots", FRONT, params={"date": monday.isoformat(), "route": "iv_infusion"})
    late = walk("POST", "/api/v1/appointments", FRONT, json={
        "plan_id": plan_id, "starts_at": iso(clinic_time(monday + timedelta(days=14), 9)), "chair_id": chair,
        "clinician_id": doctor})["appointment_id"]
    with databases.engine("sessions").begin() as connection:  # as if its time had passed
        connection.execute(sa.text("UPDATE appointments SET starts_at = starts_at - interval '60 days', "
                                   "ends_at = ends_at - interval '60 days' WHERE appointment_id = :a"), {"a": late})
    walk("POST", f"/api/v1/appointments/{late}/no-show", FRONT)

    # The checked-in session, from checklist to a signed record.
    walk("GET", f"/api/v1/sessions/{sid}", CLIN)
    walk("PATCH", f"/api/v1/sessions/{sid}/checklist", FRONT, json={"mood_score": 4})
    walk("POST", f"/api/v1/sessions/{sid}/start", CLIN, json={"lot_number": "KET-1"})
    walk("POST", f"/api/v1/sessions/{sid}/vitals", CLIN, json=BASELINE)
    walk("POST", f"/api/v1/sessions/{sid}/observations", CLIN,
         json={"dissociation_scale": "cadss", "dissociation_score": 8, "sedation_checked": True})
    walk("POST", f"/api/v1/sessions/{sid}/side-effects", CLIN, json={"effect": "nausea", "severity": "mild"})
    walk("POST", f"/api/v1/sessions/{sid}/completion", CLIN, json=discharge())
    walk("POST", f"/api/v1/sessions/{sid}/signature", CLIN)
    walk("POST", f"/api/v1/sessions/{sid}/addenda", CLIN, json={"text": "patient called, feels well"})
    walk("GET", f"/api/v1/sessions/{sid}/fhir", CLIN)
    walk("POST", f"/api/v1/plans/{plan_id}/phq9", CLIN, json={"total": 6})
    walk("GET", f"/api/v1/plans/{plan_id}/summary", CLIN)
    move_to_today(databases.engine("sessions"), booked[0]["appointment_id"])
    aborted = walk("POST", f"/api/v1/appointments/{booked[0]['appointment_id']}/check-in", CLIN, json=CHECKLIST)
    walk("POST", f"/api/v1/sessions/{aborted['session_id']}/abort", CLIN, json={"reason_code": "patient_request"})
    form_id = submitted_monitoring_form_target(databases, sid, pid)
    walk("GET", "/api/v1/monitoring-forms", CLIN, params={"overdue": "false"})
    walk("POST", f"/api/v1/monitoring-forms/{form_id}/submission", CLIN, json={"confirmation": "PMF-1"})

    # Billing, from the fee schedule to refunds and the superbill.
    walk("GET", "/api/v1/fee-schedule", BILL)
    charge = walk("POST", f"/api/v1/patients/{pid}/charges", BILL,
                  json={"code": "99214", "date_of_service": date.today().isoformat()})
    walk("GET", f"/api/v1/patients/{pid}/charges", BILL)
    walk("POST", f"/api/v1/charges/{charge['charge_id']}/void", BILL, json={"reason": "entered twice"})
    walk("GET", "/api/v1/invoices", BILL)
    invoice_id = ids["invoice_id"]
    walk("GET", f"/api/v1/invoices/{invoice_id}", FRONT)
    walk("GET", f"/api/v1/invoices/{invoice_id}/fhir", BILL)
    paid = walk("POST", f"/api/v1/invoices/{invoice_id}/payments", FRONT, json={"amount_cents": 500, "method": "cash"})
    walk("POST", f"/api/v1/payments/{paid['payment']['payment_id']}/refunds", BILL,
         json={"amount_cents": 500, "reason": "charged twice"})
    walk("GET", f"/api/v1/patients/{pid}/balance", FRONT)
    package = walk("POST", f"/api/v1/patients/{pid}/packages", BILL, json={"code": "PKG-IV6"})
    walk("GET", f"/api/v1/patients/{pid}/packages", FRONT)
    walk("GET", f"/api/v1/packages/{package['package_id']}", FRONT)
    bill = walk("POST", f"/api/v1/patients/{pid}/invoices", BILL, json={})
    walk("POST", f"/api/v1/invoices/{bill['invoice_id']}/payments", BILL,
         json={"amount_cents": bill["balance_cents"], "method": "cash"})
    walk("POST", f"/api/v1/packages/{package['package_id']}/refund", BILL, json={"reason": "moved away"})
    period = {"from": (date.today() - timedelta(days=30)).isoformat(), "to": date.today().isoformat()}
    walk("GET", f"/api/v1/patients/{pid}/superbill", BILL, params=period)
    walk("GET", f"/api/v1/patients/{pid}/superbill", BILL, params={**period, "format": "html"})
    walk("POST", f"/api/v1/patients/{pid}/charges", BILL,
         json={"code": "99214", "date_of_service": date.today().isoformat()})
    other_invoice = walk("POST", f"/api/v1/patients/{pid}/invoices", BILL, json={})
    walk("POST", f"/api/v1/invoices/{other_invoice['invoice_id']}/void", BILL, json={"reason": "issued in error"})

    # Notifications.
    walk("GET", "/api/v1/notifications", FRONT, params={"patient_id": pid})
    walk("GET", "/api/v1/notifications/dead", FRONT)
    notification_id = ids["notification_id"]
    walk("GET", f"/api/v1/notifications/{notification_id}", FRONT)
    walk("POST", f"/api/v1/notifications/{notification_id}/resend", FRONT, expect=(200, 409))
    walk("GET", f"/api/v1/patients/{pid}/notification-preferences", FRONT)
    walk("PUT", f"/api/v1/patients/{pid}/notification-preferences", FRONT, json={"email": False})
    walk("GET", f"/api/v1/patients/{pid}/fhir/communications", FRONT)
    walk("GET", f"/api/v1/patients/{pid}/access-log", ADMIN)

    # Live updates: a browser's ticket opens a (here bounded) stream.
    ticket = walk("POST", "/api/v1/stream/tickets", FRONT)
    events = walk("GET", "/api/v1/stream", {}, params={"ticket": ticket["ticket"], "max_seconds": "1"})
    assert events.startswith("retry: ")

    missing = sorted({(spec.method, spec.path) for spec in ROUTES} - walk.answered)
    assert missing == [], f"routes the walk never reached with a success: {missing}"

"""On PostgreSQL a session record and an invoice are read in one statement,
their parts nested into it as JSON (common.nested); everywhere else, and in
the writes that answer the same views, a query per part. Both ways must
answer the same, to the byte: these tests fill every part and compare."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from nameko.testing.services import entrypoint_waiter
from sqlalchemy.orm import Session

from common.events import utcnow
from services.billing import schemas as billing_schemas
from services.billing.capabilities.invoicing import AUDITED_INVOICE_READ, INVOICE_LINES
from services.billing.models import Invoice
from services.billing.service import BillingService
from services.sessions import schemas as sessions_schemas
from services.sessions.capabilities.chart import AUDITED_SESSION_READ, SESSION_PARTS
from services.sessions.models import SessionRecord
from services.sessions.service import SessionsService
from tests.support.billing import new_id
from tests.support.calls import as_staff
from tests.support.events import publish_event
from tests.support.sessions import CHECKLIST, CLINICIAN, DISCHARGE, approval_data, clinic_monday, clinic_time, iso

AUDIT = {"audit_actor": "test (clinician)", "audit_correlation_id": None}


def wire(view: dict) -> str:
    """What the caller receives: the answer as JSON, keys in order."""
    return json.dumps(view)


def same_instances(nested, loaded) -> None:
    """Every column of each nested instance equals the loaded one's, with
    the same Python type (a view may not show them all)."""
    nested = nested if isinstance(nested, list) else [nested]
    loaded = loaded if isinstance(loaded, list) else [loaded]
    assert len(nested) == len(loaded)
    for ours, theirs in zip(nested, loaded):
        for attribute in sa.inspect(type(theirs)).column_attrs:
            mine, expected = getattr(ours, attribute.key), getattr(theirs, attribute.key)
            assert (mine, type(mine)) == (expected, type(expected)), attribute.key


@pytest.fixture
def sessions(start_service):
    return start_service(SessionsService, OUTBOX_RELAY_INTERVAL=3600)


def charted_esketamine_session(sessions, databases) -> str:
    """A signed esketamine session with several vitals readings, two side
    effects, an addendum, its REMS monitoring form and the patient's
    pre-visit confirmation."""
    call = as_staff(sessions, CLINICIAN)
    engine = databases.engine("sessions")
    approval = approval_data()
    patient_id = approval["patient_id"]
    with entrypoint_waiter(sessions, "on_intake_approved", timeout=10):
        publish_event(sessions.config["AMQP_URI"], "intake", "intake.approved", approval)
    call("record_rems_enrollment", patient_id, {"enrollment_id": "REMS-1", "enrolled_on": "2026-11-01"})
    chair = call("add_resource", {"kind": "chair", "name": "Chair 1"})["resource_id"]
    clinician = call("add_resource", {"kind": "clinician", "name": "Dr A"})["resource_id"]
    plan = call("create_plan", {"patient_id": patient_id, "route": "intranasal_esketamine",
                                "indication": "major_depressive_disorder", "fixed_dose_mg": 84})
    appointment_id = call("book_appointment", {
        "plan_id": plan["plan_id"], "starts_at": iso(clinic_time(clinic_monday(), 9)),
        "chair_id": chair, "clinician_id": clinician})["appointment_id"]
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    with engine.begin() as connection:
        # Booked two days ago for now; the patient confirmed by reply since.
        connection.execute(sa.text(
            "UPDATE appointments SET starts_at = :starts, ends_at = :ends, created_at = :booked, "
            "previsit_confirmed_at = :confirmed WHERE appointment_id = :appointment_id"),
            {"starts": now, "ends": now + timedelta(hours=2), "booked": now - timedelta(days=2),
             "confirmed": now - timedelta(days=1, microseconds=-123450), "appointment_id": appointment_id})
    sid = call("check_in", appointment_id, {**CHECKLIST, "weight_kg": 71.5})["session_id"]
    call("start_session", sid, {"lot_number": "SPR-9"})
    with engine.begin() as connection:  # charted as the session went: two hours and a bit ago
        for table, column in (("session_records", "checked_in_at"), ("session_records", "started_at"),
                              ("vitals_readings", "recorded_at")):
            connection.execute(sa.text(f"UPDATE {table} SET {column} = {column} - interval '130 minutes' "
                                       "WHERE session_id = :sid"), {"sid": sid})
    dosed = datetime.fromisoformat(call("get_session", sid)["started_at"].replace("Z", "+00:00"))
    call("record_vitals", sid, {"systolic": 130, "diastolic": 82, "heart_rate": 80, "spo2": 97,
                                "recorded_at": iso(dosed + timedelta(minutes=40))})
    call("record_vitals", sid, {"systolic": 184, "diastolic": 96, "heart_rate": 88, "spo2": 97,
                                "respiratory_rate": 16, "recorded_at": iso(dosed + timedelta(minutes=80))})
    call("record_side_effect", sid, {"effect": "nausea", "severity": "mild", "intervention": "ondansetron 4 mg"})
    call("record_side_effect", sid, {"effect": "dissociation_distress", "severity": "moderate"})
    call("record_vitals", sid, {"systolic": 124, "diastolic": 80, "heart_rate": 74, "spo2": 98})
    call("record_observation", sid, {"dissociation_scale": "cadss", "dissociation_score": 8, "sedation_checked": True})
    assert call("complete_session", sid, DISCHARGE)["monitoring_form_id"]
    call("sign_session", sid)
    call("add_addendum", sid, {"text": "Patient called next day: nausea resolved."})
    return sid


def test_a_session_read_in_one_statement_answers_as_a_query_per_part(sessions, databases):
    sid = charted_esketamine_session(sessions, databases)
    answer = as_staff(sessions, CLINICIAN)("get_session", sid)
    with Session(databases.engine("sessions")) as session:
        record = session.get(SessionRecord, sid)
        parts = SESSION_PARTS.load(session, record)
        expected = sessions_schemas.session_view(record, **parts)
        assert len(expected["vitals"]) >= 4 and len(expected["side_effects"]) == 2
        assert len(expected["addenda"]) == 1 and expected["monitoring_form_id"]
        assert expected["checklist"]["previsit"]["confirmed"] is True
        assert wire(answer) == wire(expected)
        row = session.execute(AUDITED_SESSION_READ, {"session_id": sid, **AUDIT, "audit_at": utcnow()}).one()
        nested = SESSION_PARTS.unpack(row)
        for name, value in parts.items():
            same_instances(nested[name], value)
        assert wire(sessions_schemas.session_view(row.SessionRecord, **nested)) == wire(expected)


def test_an_invoice_read_in_one_statement_answers_as_a_query_per_part(start_service, databases):
    billing = start_service(BillingService, OUTBOX_RELAY_INTERVAL=3600)
    call = as_staff(billing, "biller (billing)")
    patient_id = new_id()
    for code, day in (("99214", "2026-11-20"), ("99215", "2026-11-21"), ("99214", "2026-11-22")):
        call("add_charge", patient_id, {"code": code, "date_of_service": day})
    invoice_id = call("issue_invoice", patient_id)["invoice_id"]
    first = call("record_payment", invoice_id, {"amount_cents": 5000, "method": "cash"})["payment"]
    call("record_payment", invoice_id, {"amount_cents": 1234, "method": "card", "reference": "txn-77",
                                        "received_at": "2026-11-23T10:15:30.5-05:00"})
    call("refund_payment", first["payment_id"], {"amount_cents": 1500, "reason": "goodwill"})
    answer = call("get_invoice", invoice_id)
    with Session(databases.engine("billing")) as session:
        invoice = session.get(Invoice, invoice_id)
        parts = billing_schemas.INVOICE_PARTS.load(session, invoice)
        expected = billing_schemas.invoice_detail(session, invoice)
        assert len(expected["lines"]) == 3 and len(expected["payments"]) == 2 and len(expected["refunds"]) == 1
        assert expected["status"] == "partially_paid"
        assert wire(answer) == wire(expected)
        loaded_lines = list(invoice.lines)
        session.expunge_all()
        row = session.execute(AUDITED_INVOICE_READ, {"invoice_id": invoice_id, **AUDIT, "audit_at": utcnow()}).one()
        same_instances(INVOICE_LINES.unpack(row.lines), loaded_lines)
        for name, value in billing_schemas.INVOICE_PARTS.unpack(row).items():
            same_instances(value, parts[name])

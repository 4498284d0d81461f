"""The clinic-day demo runs to completion, and what its report says each
service did is what the services' databases hold."""
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from common.config import PROJECT_ROOT


@pytest.fixture(scope="module")
def demo(tmp_path_factory, request):
    data_dir = tmp_path_factory.mktemp("clinic-day")
    report_path = data_dir / "report.json"
    amqp_uri = request.config.getoption("RABBIT_AMQP_URI")
    finished = subprocess.run(
        [sys.executable, "-m", "demo.clinic_day", "--data-dir", str(data_dir), "--report-json", str(report_path),
         "--amqp-uri", amqp_uri],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=400,
    )
    assert finished.returncode == 0, finished.stderr[-3000:] + (data_dir / "clinic.log").read_text()[-3000:]
    return data_dir, json.loads(report_path.read_text()), finished.stdout


def query(data_dir: Path, service: str, sql: str):
    with sqlite3.connect(data_dir / f"{service}.sqlite3") as connection:
        return connection.execute(sql).fetchall()


def scalar(data_dir, service, sql):
    return query(data_dir, service, sql)[0][0]


def test_the_day_plays_out_as_scripted(demo):
    _, report, stdout = demo
    assert report["intake"] == {
        "patients_registered": 12, "screened": {"eligible": 9, "needs_review": 1, "ineligible": 2},
        "approved": 10, "declined": 2, "risk_flagged": 1}
    sessions = report["sessions"]
    assert (sessions["plans"], sessions["appointments_booked"], sessions["late_cancellations"]) == (10, 60, 1)
    assert (sessions["sessions_completed"], sessions["vitals_alerts"]) == (7, 1)
    assert {"90791", "96365", "J3490", "LATE-CANCEL", "PKG-IV6"} <= set(report["billing"]["charges_by_code"])
    sent = report["notifications"]["sent_by_kind"]
    assert sent["staff_vitals_alert (staff_email)"] == 1 and sent["staff_risk_alert (staff_email)"] == 1
    assert sent["appointment_reminder (email)"] == 2
    assert "Clinic day report" in stdout


def test_intake_counts_match_its_database(demo):
    data_dir, report, _ = demo
    assert scalar(data_dir, "intake", "SELECT count(*) FROM patients") == report["intake"]["patients_registered"]
    statuses = dict(query(data_dir, "intake", "SELECT status, count(*) FROM intake_cases GROUP BY status"))
    assert statuses == {"approved": report["intake"]["approved"], "declined": report["intake"]["declined"]}


def test_sessions_counts_match_its_database(demo):
    data_dir, report, _ = demo
    sessions = report["sessions"]
    assert scalar(data_dir, "sessions", "SELECT count(*) FROM treatment_plans") == sessions["plans"]
    assert scalar(data_dir, "sessions", "SELECT count(*) FROM appointments") == sessions["appointments_booked"]
    assert scalar(data_dir, "sessions", "SELECT count(*) FROM session_records WHERE status = 'completed'") == \
        sessions["sessions_completed"]
    assert scalar(data_dir, "sessions", "SELECT count(*) FROM vitals_readings WHERE alerts != '[]'") == \
        sessions["vitals_alerts"]


def test_billing_counts_match_its_database(demo):
    data_dir, report, _ = demo
    rows = query(data_dir, "billing", "SELECT code, count(*), sum(units), sum(amount_cents) FROM charges "
                                      "WHERE status != 'void' GROUP BY code")
    assert {code: {"charges": n, "units": units, "amount_cents": cents} for code, n, units, cents in rows} == \
        report["billing"]["charges_by_code"]
    assert scalar(data_dir, "billing", "SELECT count(*) FROM invoices") == report["billing"]["invoices_issued"]
    assert scalar(data_dir, "billing", "SELECT count(*) FROM invoices WHERE status = 'paid'") == \
        report["billing"]["invoices_paid"]


def test_notification_counts_match_its_database_and_the_mail_server(demo):
    data_dir, report, _ = demo
    notifications = report["notifications"]
    assert scalar(data_dir, "notifications", "SELECT count(*) FROM messages") == notifications["messages"]
    assert dict(query(data_dir, "notifications", "SELECT status, count(*) FROM messages GROUP BY status")) == \
        notifications["by_status"]
    emails_sent = scalar(data_dir, "notifications",
                         "SELECT count(*) FROM messages WHERE status = 'sent' AND channel IN ('email', 'staff_email')")
    assert emails_sent == notifications["emails_received_by_mail_server"]
    sms_sent = scalar(data_dir, "notifications", "SELECT count(*) FROM messages WHERE status = 'sent' AND channel = 'sms'")
    assert sms_sent == notifications["sms_received_by_provider"]

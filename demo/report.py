"""The report at the end of the day: what each service did, as the gateway
shows it, and how long the chains took; as a dict (the test checks it
against the databases) and as text."""
from __future__ import annotations

from demo.story import ClinicDay, read_lines


def build_report(day: ClinicDay) -> dict:
    """What each service did, read back through the gateway."""
    api = day.api
    patients = api.pages("front_desk", "/api/v1/patients")
    intakes = [api.call("front_desk", "GET", f"/api/v1/patients/{p['patient_id']}/intake") for p in patients]
    flagged = 0
    for p in patients:
        responses = api.call("clinician", "GET", f"/api/v1/patients/{p['patient_id']}/questionnaires")["items"]
        flagged += any(r["risk_flags"] for r in responses)
    appointments, sessions, alerts = [], [], 0
    for story in day.stories:
        if story.plan_id:
            appointments += api.call("front_desk", "GET", f"/api/v1/plans/{story.plan_id}/appointments")["items"]
        if story.session_id:
            session = api.call("clinician", "GET", f"/api/v1/sessions/{story.session_id}")
            sessions.append(session)
            alerts += sum(1 for reading in session["vitals"] if reading["alerts"])
    charges = [c for s in day.stories if s.approved for c in day.charges(s.patient_id)]
    invoices = api.pages("billing", "/api/v1/invoices")
    messages = api.pages("front_desk", "/api/v1/notifications")
    by_status: dict[str, int] = {}
    by_kind: dict[str, int] = {}
    for message in messages:
        by_status[message["status"]] = by_status.get(message["status"], 0) + 1
        if message["status"] == "sent":
            label = f"{message['kind']} ({message['channel']})"
            by_kind[label] = by_kind.get(label, 0) + 1
    codes: dict[str, dict] = {}
    for charge in charges:
        if charge.get("status") == "void":
            continue
        entry = codes.setdefault(charge["code"], {"charges": 0, "units": 0, "amount_cents": 0})
        entry["charges"] += 1
        entry["units"] += charge["units"]
        entry["amount_cents"] += charge["amount_cents"]
    return {
        "clinic_time_zone": day.clinic.clinic_zone,
        "intake": {
            "patients_registered": len(patients),
            "screened": {outcome: sum(1 for i in intakes if i["screening_outcome"] == outcome)
                         for outcome in ("eligible", "needs_review", "ineligible")},
            "approved": sum(1 for i in intakes if i["status"] == "approved"),
            "declined": sum(1 for i in intakes if i["status"] == "declined"),
            "risk_flagged": flagged,
        },
        "sessions": {
            "plans": sum(1 for s in day.stories if s.plan_id),
            "appointments_booked": len(appointments),
            "appointments_cancelled": sum(1 for a in appointments if a["status"] == "cancelled"),
            "late_cancellations": sum(1 for a in appointments if a.get("late_cancellation")),
            "sessions_completed": sum(1 for s in sessions if s["status"] == "completed"),
            "sessions_signed": sum(1 for s in sessions if s.get("signed_at")),
            "vitals_alerts": alerts,
        },
        "billing": {
            "charges_by_code": dict(sorted(codes.items())),
            "invoices_issued": len(invoices),
            "invoices_paid": sum(1 for i in invoices if i["status"] == "paid"),
            "invoiced_cents": sum(i["total_cents"] for i in invoices),
            "outstanding_cents": sum(i["balance_cents"] for i in invoices),
        },
        "notifications": {
            "messages": len(messages),
            "by_status": dict(sorted(by_status.items())),
            "sent_by_kind": dict(sorted(by_kind.items())),
            "emails_received_by_mail_server": len(read_lines(day.clinic.mail_file)),
            "sms_received_by_provider": len(read_lines(day.clinic.sms_file)),
        },
        "timings_seconds": {name: round(value, 2) for name, value in day.timings.items()},
        "chain_latencies_seconds": {name: round(value, 3) for name, value in day.latencies.items()},
    }


def money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def render(report: dict) -> str:
    i, s, b, n = report["intake"], report["sessions"], report["billing"], report["notifications"]
    lines = [
        "",
        "Clinic day report",
        "=================",
        f"Intake         {i['patients_registered']} patients registered and screened: "
        f"{i['screened']['eligible']} eligible, {i['screened']['needs_review']} needing review, "
        f"{i['screened']['ineligible']} ineligible",
        f"               {i['approved']} approved, {i['declined']} declined, {i['risk_flagged']} risk-flagged "
        "(staff alerted)",
        f"Sessions       {s['plans']} treatment plans, {s['appointments_booked']} appointments booked "
        f"({s['late_cancellations']} late cancellation)",
        f"               {s['sessions_completed']} sessions completed and {s['sessions_signed']} signed, "
        f"{s['vitals_alerts']} vitals alert",
        f"Billing        {b['invoices_issued']} invoices for {money(b['invoiced_cents'])}, "
        f"{b['invoices_paid']} paid, {money(b['outstanding_cents'])} outstanding",
    ]
    for code, entry in b["charges_by_code"].items():
        lines.append(f"                 {code:<12} {entry['charges']:3d} charge(s) {entry['units']:5d} unit(s) "
                     f"{money(entry['amount_cents']):>12}")
    lines.append(f"Notifications  {n['messages']} messages: " +
                 ", ".join(f"{count} {'waiting for their time' if status == 'queued' else status}"
                           for status, count in n["by_status"].items()))
    for kind, count in n["sent_by_kind"].items():
        lines.append(f"                 {kind:<44} {count:3d} sent")
    lines.append(f"               the mail server received {n['emails_received_by_mail_server']} emails, "
                 f"the SMS provider {n['sms_received_by_provider']} messages")
    lines.append("Timings        " + ", ".join(f"{k.replace('_', ' ')} {v:.1f}s"
                                               for k, v in report["timings_seconds"].items()))
    lines.append("Chains         " + ", ".join(f"{k.replace('_', ' ')} {v * 1000:.0f} ms"
                                               for k, v in report["chain_latencies_seconds"].items()))
    return "\n".join(lines)

"""The day's story, played only through the gateway's HTTP API as the front
desk, the clinicians and the billing office would: a dozen patients
registered and screened (two ineligible, one risk-flagged), courses planned
and booked, sessions checked in, monitored (one vitals alert) and completed,
charges invoiced and paid, reminders, receipts and staff alerts delivered.
Sessions are charted after the fact (check-in back-dated about 90 minutes)
so infusions have real lengths; as check-in belongs to the appointment's own
day and never precedes its booking, and the API only ever books ahead, each
of this morning's first sessions is first moved in the demo's sessions
database to a start just after that arrival, as if booked two days before.
"""
from __future__ import annotations

import json
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

from demo.clinic import TOKENS, RunningClinic
from demo.timing import wait_until


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


class Progress:
    """One line that fills up; plain lines when not on a terminal."""

    def __init__(self, total: int, stream=sys.stderr):
        self.total, self.done, self.stream = total, 0, stream
        self.tty = stream.isatty()
        self.label = ""

    def step(self, label: str, count: int = 1) -> None:
        self.done = min(self.total, self.done + count)
        if label != self.label and not self.tty:
            print(f"  … {label}", file=self.stream, flush=True)
        self.label = label
        if self.tty:
            width = 30
            filled = int(width * self.done / self.total)
            print(f"\r  [{'#' * filled}{'.' * (width - filled)}] {100 * self.done // self.total:3d}%  {label:<48}",
                  end="", file=self.stream, flush=True)

    def finish(self) -> None:
        if self.tty:
            print(file=self.stream, flush=True)


class Api:
    """The gateway, as each kind of staff sees it."""

    def __init__(self, base_url: str):
        self.http = httpx.Client(base_url=base_url, timeout=30)

    def call(self, role: str, method: str, path: str, body=None, *, expect=(200, 201), **kwargs) -> dict:
        headers = {"Authorization": f"Bearer {TOKENS[role]}", **kwargs.pop("headers", {})}
        answer = self.http.request(method, path, json=body, headers=headers, **kwargs)
        if answer.status_code not in expect:
            raise RuntimeError(f"{method} {path} answered {answer.status_code}: {answer.text[:300]}")
        return answer.json()

    def pages(self, role: str, path: str, **params) -> list[dict]:
        items, offset = [], 0
        while True:
            page = self.call(role, "GET", path, params={**params, "limit": 100, "offset": offset})
            items += page["items"]
            offset += len(page["items"])
            if not page["items"] or offset >= page.get("total", offset):
                return items


def read_lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


PATIENTS = [
    # (given, family, story)
    ("Ana", "Lopez", "eligible"), ("Ben", "Okafor", "eligible"), ("Chloe", "Nguyen", "risk_flag"),
    ("Dev", "Patel", "eligible"), ("Erin", "Walsh", "needs_review"), ("Farah", "Haddad", "eligible"),
    ("Gus", "Moreau", "eligible"), ("Hana", "Sato", "eligible"), ("Ivan", "Petrov", "eligible"),
    ("Jade", "Kim", "eligible"), ("Kofi", "Mensah", "ineligible_bp"), ("Lena", "Fischer", "ineligible_pregnancy"),
]
# Of the ten approved: the first eight are treated today (the fifth of them
# late-cancels instead), the last two are booked for this afternoon and get
# their two-hour reminder while the demo runs.
TREATED_TODAY, BOOKED_FOR_LATER = 8, 2
LATE_CANCELLER, VITALS_ALERT_PATIENT, PACKAGE_BUYER = 4, 1, 2
PHQ9 = [2, 2, 2, 2, 1, 2, 1, 1, 0]
GAD7 = [2, 1, 2, 1, 1, 1, 1]
BASELINE = {"systolic": 124, "diastolic": 80, "heart_rate": 74, "spo2": 98, "respiratory_rate": 14}


@dataclass
class Story:
    given: str
    family: str
    kind: str
    patient_id: str = ""
    approved: bool = False
    plan_id: str = ""
    appointments: list = field(default_factory=list)
    session_id: str = ""
    invoice: dict | None = None


class ClinicDay:
    def __init__(self, clinic: RunningClinic, progress: Progress):
        self.clinic = clinic
        self.api = Api(clinic.gateway)
        self.progress = progress
        self.stories = [Story(g, f, k) for g, f, k in PATIENTS]
        self.timings: dict[str, float] = {}
        self.latencies: dict[str, float] = {}
        self.now = datetime.now(timezone.utc)

    # -- phases ------------------------------------------------------------

    def run(self) -> None:
        started = time.monotonic()
        for phase in (self.set_up_the_clinic, self.intake, self.plan_and_book, self.treat, self.bill,
                      self.wait_for_messages):
            phase_started = time.monotonic()
            phase()
            self.timings[phase.__name__] = time.monotonic() - phase_started
        self.timings["whole_day"] = time.monotonic() - started

    def set_up_the_clinic(self) -> None:
        self.chairs = [self.api.call("admin", "POST", "/api/v1/resources", {"kind": "chair", "name": f"Chair {n}"})
                       ["resource_id"] for n in range(1, 7)]
        self.clinicians = [self.api.call("admin", "POST", "/api/v1/resources",
                                         {"kind": "clinician", "name": f"Dr {name}"})["resource_id"]
                           for name in ("Adler", "Baptiste", "Cho", "Diallo", "Eze", "Faulk")]
        self.progress.step("chairs and clinicians on the schedule")

    def intake(self) -> None:
        for story in self.stories:
            self.progress.step(f"intake: {story.given} {story.family[0]}.")
            patient = self.api.call("front_desk", "POST", "/api/v1/patients", {
                "given_name": story.given, "family_name": story.family, "date_of_birth": "1984-05-17",
                "sex": "female" if story.given in ("Ana", "Chloe", "Erin", "Farah", "Hana", "Jade", "Lena")
                else "male",
                "phone": f"+1415555{len(story.given):02d}{ord(story.family[0]):02d}",
                "email": f"{story.given.lower()}.{story.family.lower()}@example.org",
                "time_zone": self.clinic.clinic_zone, "weight_kg": 72, "height_cm": 172,
                "primary_condition": "treatment_resistant_depression", "diagnosis_codes": ["F33.2"],
                "emergency_contact": {"name": "Next of kin", "phone": "+14155550100", "relationship": "partner"},
            })
            pid = story.patient_id = patient["patient_id"]
            for kind in ("treatment", "email", "sms"):
                self.api.call("front_desk", "POST", f"/api/v1/patients/{pid}/consents",
                              {"kind": kind, "method": "electronic"})
            history = {"conditions": [], "medications": [{"name": "sertraline", "dose": "100 mg"}]}
            if story.kind == "needs_review":
                history["conditions"] = ["bipolar_disorder"]
            if story.kind == "ineligible_pregnancy":
                history["pregnant"] = True
            self.api.call("clinician", "PUT", f"/api/v1/patients/{pid}/medical-history", history)
            phq9 = PHQ9[:8] + [1] if story.kind == "risk_flag" else PHQ9
            self.api.call("front_desk", "POST", f"/api/v1/patients/{pid}/questionnaires",
                          {"instrument": "phq9", "answers": phq9})
            self.api.call("front_desk", "POST", f"/api/v1/patients/{pid}/questionnaires",
                          {"instrument": "gad7", "answers": GAD7})
            self.api.call("front_desk", "POST", f"/api/v1/patients/{pid}/intake/submission")
            pressure = {"systolic": 166, "diastolic": 102} if story.kind == "ineligible_bp" else \
                {"systolic": 126, "diastolic": 82}
            screening = self.api.call("clinician", "POST", f"/api/v1/patients/{pid}/intake/screening", pressure)
            if screening["outcome"] == "ineligible":
                self.api.call("clinician", "POST", f"/api/v1/patients/{pid}/intake/decline",
                              {"reason": "absolute contraindication at screening"})
                continue
            approved_at = time.monotonic()
            self.api.call("clinician", "POST", f"/api/v1/patients/{pid}/intake/approval", {
                "reason": "suitable for an IV ketamine induction course",
                "relative_contraindications_reviewed": screening["outcome"] == "needs_review"})
            story.approved = True
            if "approval_to_consultation_charge" not in self.latencies:
                wait_until(lambda: self.charges(pid), 30, "the consultation charge")
                self.latencies["approval_to_consultation_charge"] = time.monotonic() - approved_at

    def plan_and_book(self) -> None:
        approved = [s for s in self.stories if s.approved]
        first_slot = (self.now + timedelta(minutes=3)).replace(second=0, microsecond=0)
        for index, story in enumerate(approved):
            self.progress.step(f"plan and book: {story.given} {story.family[0]}.")
            pid = story.patient_id
            wait_until(lambda: self.api.call("front_desk", "GET", f"/api/v1/patients/{pid}/eligibility",
                                             expect=(200, 404)).get("eligible"), 30, "sessions to see the approval")
            story.plan_id = self.api.call("clinician", "POST", "/api/v1/plans", {
                "patient_id": pid, "route": "iv_infusion", "indication": "treatment_resistant_depression",
                "mg_per_kg": 0.5, "max_dose_mg": 60})["plan_id"]
            if index < TREATED_TODAY:
                # Two waves of four chairs this morning.
                starts = first_slot + timedelta(minutes=70 * (index // 4))
                chair, clinician = self.chairs[index % 4], self.clinicians[index % 4]
            else:
                # This afternoon: the 2-hour reminder falls due within a minute.
                # The next minute at least two hours and a few seconds away, so
                # the reminder is still ahead when notifications plans it.
                soon = datetime.now(timezone.utc) + timedelta(hours=2, seconds=5)
                starts = soon.replace(second=0, microsecond=0) + timedelta(minutes=1)
                chair, clinician = self.chairs[4 + index - TREATED_TODAY], self.clinicians[4 + index - TREATED_TODAY]
            course = self.api.call("front_desk", "POST", f"/api/v1/plans/{story.plan_id}/course",
                                   {"first_starts_at": iso(starts), "chair_id": chair, "clinician_id": clinician},
                                   headers={"Idempotency-Key": f"course-{story.plan_id}"})
            story.appointments = course["appointments"]

    def treat(self) -> None:
        today = [s for s in self.stories if s.approved][:TREATED_TODAY]
        for index, story in enumerate(today):
            first = story.appointments[0]
            if index == LATE_CANCELLER:
                self.progress.step(f"late cancellation: {story.given} {story.family[0]}.")
                self.api.call("front_desk", "POST", f"/api/v1/appointments/{first['appointment_id']}/cancellation")
                continue
            self.progress.step(f"session: {story.given} {story.family[0]}.")
            if index == PACKAGE_BUYER:
                self.api.call("billing", "POST", f"/api/v1/patients/{story.patient_id}/packages", {"code": "PKG-IV6"})
            arrived = self.now - timedelta(minutes=95 - 5 * index)
            started = arrived + timedelta(minutes=15)
            stopped = started + timedelta(minutes=40)
            self._booked_for_this_morning(first["appointment_id"], arrived + timedelta(minutes=10))
            session = self.api.call("front_desk", "POST", f"/api/v1/appointments/{first['appointment_id']}/check-in", {
                "fasting_confirmed": True, "escort_confirmed": True, "weight_kg": 72, "baseline_vitals": BASELINE,
                "pre_phq9": 15, "checked_in_at": iso(arrived)})
            sid = story.session_id = session["session_id"]
            self.api.call("clinician", "POST", f"/api/v1/sessions/{sid}/start",
                          {"lot_number": "KET-2026-1125", "started_at": iso(started)})
            for minutes in (15, 30, 45):
                reading = dict(BASELINE, heart_rate=80)
                alert_reading = index == VITALS_ALERT_PATIENT and minutes == 15
                if alert_reading:
                    reading.update(systolic=186, diastolic=112)
                sent_before = len(read_lines(self.clinic.mail_file))
                recorded = time.monotonic()
                self.api.call("clinician", "POST", f"/api/v1/sessions/{sid}/vitals",
                              {**reading, "recorded_at": iso(started + timedelta(minutes=minutes))})
                if alert_reading:
                    wait_until(lambda: any("on-duty@" in ",".join(m["to"]) for m in
                                           read_lines(self.clinic.mail_file)[sent_before:]), 30,
                               "the staff vitals alert email")
                    self.latencies["vitals_reading_to_staff_alert_email"] = time.monotonic() - recorded
            self.api.call("clinician", "POST", f"/api/v1/sessions/{sid}/observations",
                          {"dissociation_scale": "0-10", "dissociation_score": 4})
            completed = time.monotonic()
            self.api.call("clinician", "POST", f"/api/v1/sessions/{sid}/completion", {
                "alert_and_oriented": True, "escort_present": True, "no_driving_advised": True,
                "stopped_at": iso(stopped)})
            self.api.call("clinician", "POST", f"/api/v1/sessions/{sid}/signature")
            if "session_completed_to_charges" not in self.latencies:
                wait_until(lambda: any(c["code"] == "96365" for c in self.charges(story.patient_id)), 30,
                           "the infusion charge")
                self.latencies["session_completed_to_charges"] = time.monotonic() - completed

    def _booked_for_this_morning(self, appointment_id: str, starts: datetime) -> None:
        """The one step outside the API (see the module's docstring)."""
        def stored(moment: datetime) -> str:
            # How SQLAlchemy keeps a UTC instant in SQLite.
            return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")

        with sqlite3.connect(self.clinic.data_dir / "sessions.sqlite3", timeout=30) as db:
            db.execute("UPDATE appointments SET starts_at = ?, ends_at = ?, created_at = ? WHERE appointment_id = ?",
                       (stored(starts), stored(starts + timedelta(minutes=60)), stored(starts - timedelta(days=2)),
                        appointment_id))

    def bill(self) -> None:
        approved = [s for s in self.stories if s.approved]
        treated = [s for s in approved[:TREATED_TODAY] if s.session_id]
        # Every event-raised charge must be in before invoicing.
        wait_until(lambda: all(any(c["code"] == "96365" for c in self.charges(s.patient_id)) for s in treated),
                   60, "the infusion charges")
        canceller = approved[LATE_CANCELLER]
        wait_until(lambda: any(c["code"] == "LATE-CANCEL" for c in self.charges(canceller.patient_id)), 30,
                   "the late-cancellation fee")
        for index, story in enumerate(approved):
            self.progress.step(f"billing: {story.given} {story.family[0]}.")
            story.invoice = self.api.call("billing", "POST", f"/api/v1/patients/{story.patient_id}/invoices", {})
            invoice = story.invoice
            if index == len(approved) - 1:
                continue  # left open: insurance will pay
            amount = invoice["total_cents"] // 2 if index == len(approved) - 2 else invoice["balance_cents"]
            if amount <= 0:
                continue
            mail_before = len(read_lines(self.clinic.mail_file))
            paid = time.monotonic()
            payment = {"amount_cents": amount, "method": "card", "reference": f"ch_demo_{index:03d}"}
            key = {"Idempotency-Key": f"pay-{invoice['invoice_id']}"}
            self.api.call("front_desk", "POST", f"/api/v1/invoices/{invoice['invoice_id']}/payments", payment,
                          headers=key)
            # A retried request (say, a timeout at the card terminal) is not a second payment.
            self.api.call("front_desk", "POST", f"/api/v1/invoices/{invoice['invoice_id']}/payments", payment,
                          headers=key)
            if "payment_to_receipt_email" not in self.latencies:
                wait_until(lambda: any("receipt" in m["subject"].lower() or "payment" in m["subject"].lower()
                                       for m in read_lines(self.clinic.mail_file)[mail_before:]), 60,
                           "the receipt email")
                self.latencies["payment_to_receipt_email"] = time.monotonic() - paid

    def wait_for_messages(self) -> None:
        self.progress.step("waiting for this afternoon's 2-hour reminders")
        later = [s for s in self.stories if s.approved][TREATED_TODAY:]

        def reminders_sent():
            sent = []
            for story in later:
                first = story.appointments[0]["appointment_id"]
                sent += self.api.pages("front_desk", "/api/v1/notifications", appointment_id=first,
                                       kind="appointment_reminder", status="sent")
            return len(sent) >= 2 * len(later)

        wait_until(reminders_sent, 300, "the 2-hour reminders", interval=1)

        def settled():
            pending = self.api.pages("front_desk", "/api/v1/notifications", status="queued")
            retrying = self.api.pages("front_desk", "/api/v1/notifications", status="retrying")
            due = [m for m in pending + retrying
                   if datetime.fromisoformat(m["due_at"].replace("Z", "+00:00")) <= datetime.now(timezone.utc)]
            return not due

        wait_until(settled, 120, "every message due now to be sent", interval=1)

    def charges(self, patient_id: str) -> list[dict]:
        return self.api.call("billing", "GET", f"/api/v1/patients/{patient_id}/charges")["items"]

"""Ready-made sessions inputs and times that are always bookable: a clinic
Monday at least a week ahead, in the default clinic hours."""
from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

CLINIC_ZONE = ZoneInfo("America/New_York")  # the default of services.sessions.domain.ClinicHours
CLINICIAN = "dr.who (clinician)"
FRONT_DESK = "frontdesk (front_desk)"

BASELINE = {"systolic": 122, "diastolic": 78, "heart_rate": 72, "spo2": 98, "respiratory_rate": 14}
CHECKLIST = {"fasting_confirmed": True, "escort_confirmed": True, "weight_kg": 70, "baseline_vitals": BASELINE,
             "pre_phq9": 14}
DISCHARGE = {"alert_and_oriented": True, "escort_present": True, "no_driving_advised": True}
IV_PLAN = {"route": "iv_infusion", "indication": "treatment_resistant_depression", "mg_per_kg": 0.5,
           "max_dose_mg": 60}


def clinic_monday(weeks_ahead: int = 2) -> date:
    today = datetime.now(CLINIC_ZONE).date()
    return today + timedelta(days=(7 - today.weekday()) % 7 or 7) + timedelta(weeks=weeks_ahead - 1)


def clinic_time(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), CLINIC_ZONE).astimezone(timezone.utc)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def move_to_today(engine, appointment_id: str, starts_at: datetime | None = None) -> str:
    """Bookings are always made ahead, but check-in belongs to the
    appointment's own day: move a booked appointment to ``starts_at`` (by
    default this minute) as if it had been booked two days before."""
    import sqlalchemy as sa

    starts = (starts_at or datetime.now(timezone.utc)).replace(second=0, microsecond=0)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE appointments SET starts_at = :starts, ends_at = :ends, created_at = :booked "
                                   "WHERE appointment_id = :appointment_id"),
                           {"starts": starts, "ends": starts + timedelta(hours=1),
                            "booked": starts - timedelta(days=2), "appointment_id": appointment_id})
    return appointment_id


def approval_data(patient_id: str | None = None, phq9_total: int = 20, weight_kg: float = 70) -> dict:
    """The data of an ``intake.approved`` event, as intake publishes it."""
    return {"patient_id": patient_id or str(uuid.uuid4()), "mrn": "MRN0000042", "decided_by": "dr.who",
            "decided_at": iso(datetime.now(timezone.utc)), "screening_outcome": "eligible",
            "diagnosis_codes": ["F33.2"], "primary_condition": "treatment_resistant_depression",
            "weight_kg": weight_kg,
            "scores": {"phq9": {"total": phq9_total, "band": "severe", "completed_at": iso(datetime.now(timezone.utc))}}}


def discharge(**changes) -> dict:
    """Discharge of an IV session whose infusion stopped just now."""
    return {**DISCHARGE, "stopped_at": iso(datetime.now(timezone.utc)), **changes}

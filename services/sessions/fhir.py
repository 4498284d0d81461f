"""Read-only FHIR R4 export of one monitored treatment session: the
Appointment it was booked as, the Encounter (the visit), the
MedicationAdministration (the ketamine or esketamine dose, once dosing
started) and an Observation per measure of each vitals reading; and of a
patient's outcome series, a survey Observation per PHQ-9 or GAD-7 total.

Plain functions over sessions' models, no database or broker access. The
patient appears only as the reference ``Patient/<patient_id>`` (the Patient
resource is intake's). Free text (abort notes, side-effect interventions,
addenda) is left out. Chairs and clinicians are sessions' own resources, not
FHIR resources anywhere: they are referenced by identifier, with their name."""
from __future__ import annotations

from common.events import iso
from services.sessions.models import Appointment, Resource, SessionRecord, TreatmentPlan, VitalsReading
from services.sessions.trajectory import INSTRUMENTS, Point, ScoreSource, Trajectory

LOCAL_CODES = "urn:clinic:codes"
RESOURCE_IDS = "urn:clinic:resource"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"

# Sessions' appointment status → FHIR Appointment.status. An aborted session
# was attended (an Encounter resulted), so its appointment is fulfilled.
APPOINTMENT_STATUS = {
    "scheduled": "booked", "checked_in": "checked-in", "in_session": "arrived", "completed": "fulfilled",
    "cancelled": "cancelled", "no_show": "noshow", "aborted": "fulfilled",
}

# Route → SNOMED CT route of administration. oral_sublingual (an oral
# ketamine preparation held under the tongue) keeps its local code only.
ROUTE_SNOMED = {
    "iv_infusion": ("47625008", "Intravenous route"),
    "im_injection": ("78421000", "Intramuscular route"),
    "intranasal_esketamine": ("46713006", "Nasal route"),
}
ROUTE_TEXT = {
    "iv_infusion": "IV infusion", "im_injection": "IM injection",
    "intranasal_esketamine": "Intranasal (esketamine nasal spray)", "oral_sublingual": "Oral/sublingual",
}

# Drug → RxNorm ingredient, where we are sure of it (ketamine: 6130).
DRUG_RXNORM = {"ketamine": ("6130", "ketamine")}

# Alert code → (FHIR interpretation code, display); see domain.vitals_alerts.
ALERT_INTERPRETATION = {"high": ("H", "High"), "low": ("L", "Low")}

# Instrument → LOINC code of its total score.
SCORE_LOINC = {
    "phq9": ("44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score"),
    "gad7": ("70274-6", "Generalized anxiety disorder 7 item (GAD-7) total score"),
}
# How the score was obtained (Observation.method): staff took it, or the
# patient answered by secure link; a self-reported one also names the
# patient as its performer.
SCORE_METHOD = {
    ScoreSource.STAFF.value: "Administered by clinic staff",
    ScoreSource.SELF_REPORT.value: "Self-reported by the patient (secure link)",
}

MM_HG = {"unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}
PER_MIN = {"unit": "/min", "system": UCUM, "code": "/min"}
PERCENT = {"unit": "%", "system": UCUM, "code": "%"}


def patient_reference(patient_id: str) -> dict:
    return {"reference": f"Patient/{patient_id}"}


def clinic_resource_reference(kind: str, resource: Resource | None, resource_id: str) -> dict:
    """A chair (FHIR Location) or clinician (Practitioner) by identifier."""
    reference = {"type": kind, "identifier": {"system": RESOURCE_IDS, "value": resource_id}}
    if resource is not None:
        reference["display"] = resource.name
    return reference


def local(kind: str, code: str, display: str | None = None) -> dict:
    coding = {"system": LOCAL_CODES, "code": f"{kind}/{code}"}
    if display:
        coding["display"] = display
    return coding


def route_concept(route: str) -> dict:
    coding = [local("route", route, ROUTE_TEXT.get(route))]
    if route in ROUTE_SNOMED:
        code, display = ROUTE_SNOMED[route]
        coding.insert(0, {"system": SNOMED, "code": code, "display": display})
    return {"coding": coding, "text": ROUTE_TEXT.get(route, route)}


def drug_concept(drug: str) -> dict:
    coding = [local("drug", drug, drug)]
    if drug in DRUG_RXNORM:
        code, display = DRUG_RXNORM[drug]
        coding.insert(0, {"system": RXNORM, "code": code, "display": display})
    return {"coding": coding, "text": drug}


def appointment_resource(appointment: Appointment, chair: Resource | None, clinician: Resource | None) -> dict:
    return {
        "resourceType": "Appointment",
        "id": appointment.appointment_id,
        "status": APPOINTMENT_STATUS.get(appointment.status, "booked"),
        "serviceType": [{"coding": [local("service", f"ketamine-session/{appointment.route}")],
                         "text": f"Ketamine-assisted treatment session ({ROUTE_TEXT.get(appointment.route)})"}],
        "appointmentType": {"coding": [local("appointment-kind", appointment.kind, appointment.kind)],
                            "text": f"{appointment.kind} session {appointment.sequence}"},
        "start": iso(appointment.starts_at),
        "end": iso(appointment.ends_at),
        "created": iso(appointment.created_at),
        "participant": [
            {"actor": patient_reference(appointment.patient_id), "required": "required", "status": "accepted"},
            {"actor": clinic_resource_reference("Practitioner", clinician, appointment.clinician_id),
             "required": "required", "status": "accepted"},
            {"actor": clinic_resource_reference("Location", chair, appointment.chair_id),
             "required": "required", "status": "accepted"},
        ],
    }


def encounter_status(record: SessionRecord) -> str:
    if record.status == "aborted":
        # Ended before dosing began → cancelled; after → it happened, and ended.
        return "finished" if record.started_at is not None else "cancelled"
    return {"checked_in": "arrived", "in_progress": "in-progress",
            "completed": "finished"}.get(record.status, "unknown")


def encounter_resource(record: SessionRecord, appointment: Appointment, plan: TreatmentPlan,
                       chair: Resource | None) -> dict:
    period = {"start": iso(record.checked_in_at)}
    end = record.discharged_at or record.aborted_at
    if end is not None:
        period["end"] = iso(end)
    return {
        "resourceType": "Encounter",
        "id": record.session_id,
        "status": encounter_status(record),
        "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
        "type": [{"coding": [local("service", f"ketamine-session/{record.route}")],
                  "text": f"Ketamine-assisted treatment session ({ROUTE_TEXT.get(record.route)})"}],
        "subject": patient_reference(record.patient_id),
        "appointment": [{"reference": f"Appointment/{appointment.appointment_id}"}],
        "period": period,
        "reasonCode": [{"coding": [local("indication", plan.indication, plan.indication)]}],
        "location": [{"location": clinic_resource_reference("Location", chair, appointment.chair_id)}],
    }


def medication_administration_resource(record: SessionRecord) -> dict | None:
    """The dose given; None when dosing never started."""
    if record.started_at is None:
        return None
    status = {"in_progress": "in-progress", "completed": "completed", "aborted": "stopped"}.get(
        record.status, "unknown")
    period = {"start": iso(record.started_at)}
    end = record.ended_at or record.aborted_at
    if end is not None:
        period["end"] = iso(end)
    medication = {"resourceType": "Medication", "id": "medication", "code": drug_concept(record.drug)}
    if record.lot_number:
        medication["batch"] = {"lotNumber": record.lot_number}
    dosage = {"route": route_concept(record.route)}
    if record.dose_mg is not None:
        dosage["dose"] = {"value": record.dose_mg, "unit": "mg", "system": UCUM, "code": "mg"}
    return {
        "resourceType": "MedicationAdministration",
        "id": f"{record.session_id}-dose",
        "contained": [medication],
        "status": status,
        "medicationReference": {"reference": "#medication", "display": record.drug},
        "subject": patient_reference(record.patient_id),
        "context": {"reference": f"Encounter/{record.session_id}"},
        "effectivePeriod": period,
        "dosage": dosage,
    }


def _interpretation(reading: VitalsReading, measure: str) -> list[dict] | None:
    for alert in reading.alerts or []:
        if alert.get("measure") == measure:
            flag = ALERT_INTERPRETATION.get(str(alert.get("code", "")).rsplit("_", 1)[-1])
            if flag:
                return [{"coding": [{"system": INTERPRETATION, "code": flag[0], "display": flag[1]}]}]
    return None


def _vital(record: SessionRecord, reading: VitalsReading, suffix: str, coding: list[dict], text: str) -> dict:
    return {
        "resourceType": "Observation",
        "id": f"{reading.reading_id}-{suffix}",
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs",
                                  "display": "Vital Signs"}]}],
        "code": {"coding": coding, "text": text},
        "subject": patient_reference(record.patient_id),
        "encounter": {"reference": f"Encounter/{record.session_id}"},
        "effectiveDateTime": iso(reading.recorded_at),
    }


def _quantity(value, unit: dict) -> dict:
    return {"value": value, **unit}


def vitals_observation_resources(record: SessionRecord, reading: VitalsReading) -> list[dict]:
    """One Observation per measure the reading holds (a blood pressure panel
    with systolic and diastolic components, heart rate, SpO2, respiratory rate)."""
    resources = []
    if reading.systolic is not None and reading.diastolic is not None:
        panel = _vital(record, reading, "bp", [
            {"system": LOINC, "code": "85354-9", "display": "Blood pressure panel with all children optional"}],
            "Blood pressure")
        components = []
        for measure, code, display in (("systolic", "8480-6", "Systolic blood pressure"),
                                       ("diastolic", "8462-4", "Diastolic blood pressure")):
            component = {"code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
                         "valueQuantity": _quantity(getattr(reading, measure), MM_HG)}
            interpretation = _interpretation(reading, measure)
            if interpretation:
                component["interpretation"] = interpretation
            components.append(component)
        panel["component"] = components
        resources.append(panel)
    singles = (
        ("heart_rate", "hr", [{"system": LOINC, "code": "8867-4", "display": "Heart rate"}], "Heart rate", PER_MIN),
        ("spo2", "spo2", [
            {"system": LOINC, "code": "59408-5", "display": "Oxygen saturation in Arterial blood by Pulse oximetry"},
            {"system": LOINC, "code": "2708-6", "display": "Oxygen saturation in Arterial blood"}],
         "SpO2 (pulse oximetry)", PERCENT),
        ("respiratory_rate", "rr", [{"system": LOINC, "code": "9279-1", "display": "Respiratory rate"}],
         "Respiratory rate", PER_MIN),
    )
    for measure, suffix, coding, text, unit in singles:
        value = getattr(reading, measure)
        if value is None:
            continue
        observation = _vital(record, reading, suffix, coding, text)
        observation["valueQuantity"] = _quantity(value, unit)
        interpretation = _interpretation(reading, measure)
        if interpretation:
            observation["interpretation"] = interpretation
        resources.append(observation)
    return resources


def full_url(resource: dict) -> str:
    if resource["resourceType"] in ("Appointment", "Encounter"):
        return f"urn:uuid:{resource['id']}"
    return f"urn:clinic:{resource['resourceType'].lower()}:{resource['id']}"


def session_bundle(record: SessionRecord, appointment: Appointment, plan: TreatmentPlan,
                   readings: list[VitalsReading], resources: dict[str, Resource]) -> dict:
    """The session as a Bundle of type collection: Appointment, Encounter,
    MedicationAdministration (once dosed), then the vitals Observations in
    reading order. ``resources`` maps resource ids to chairs and clinicians."""
    chair, clinician = resources.get(appointment.chair_id), resources.get(appointment.clinician_id)
    entries = [appointment_resource(appointment, chair, clinician),
               encounter_resource(record, appointment, plan, chair)]
    administration = medication_administration_resource(record)
    if administration is not None:
        entries.append(administration)
    for reading in readings:
        entries.extend(vitals_observation_resources(record, reading))
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": full_url(r), "resource": r} for r in entries],
    }


def outcome_observation_resource(patient_id: str, point: Point) -> dict:
    """One PHQ-9 or GAD-7 total of the outcome series (a survey Observation)."""
    loinc, display = SCORE_LOINC[point.instrument]
    title = INSTRUMENTS[point.instrument].title
    resource = {
        "resourceType": "Observation",
        "id": f"outcome-{point.score_id}",
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]}],
        "code": {"coding": [{"system": LOINC, "code": loinc, "display": display},
                            local("score", f"{point.instrument}-total", f"{title} total score")],
                 "text": f"{title} total score"},
        "subject": patient_reference(patient_id),
        "effectiveDateTime": iso(point.recorded_at),
        "valueInteger": point.total,
        "interpretation": [{"coding": [local("band", point.band)], "text": point.band.replace("_", " ")}],
        "method": {"coding": [local("score-source", point.source, SCORE_METHOD[point.source])],
                   "text": SCORE_METHOD[point.source]},
    }
    if point.source == ScoreSource.SELF_REPORT.value:
        resource["performer"] = [patient_reference(patient_id)]
    if point.session_id:
        resource["encounter"] = {"reference": f"Encounter/{point.session_id}"}
    return resource


def outcome_bundle(trajectory: Trajectory) -> dict:
    """The outcome series as a Bundle of type collection, in time order."""
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": full_url(r), "resource": r}
                  for r in (outcome_observation_resource(trajectory.patient_id, p) for p in trajectory.points)],
    }

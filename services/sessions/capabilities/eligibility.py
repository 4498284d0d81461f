"""Sessions' read model of each patient, built from intake's events: intake
status, treatment consent, baseline PHQ-9, the details the day view shows,
and the Spravato REMS enrollment recorded here."""
from __future__ import annotations

from datetime import datetime

from common.database import upsert_if_newer
from common.errors import NotFound
from common.events import as_utc
from common.handlers import consumes, rpc
from common.validation import parse, require_id
from services.intake.events import ConsentRecorded, IntakeApproved, IntakeDeclined, PatientRegistered, PatientUpdated
from services.sessions import schemas
from services.sessions.capabilities.chart import Chart
from services.sessions.models import PatientEligibility
from services.sessions.schemas import eligibility_view


class Eligibility(Chart):

    @rpc
    def get_eligibility(self, patient_id):
        with self.db.read() as session:
            row = session.get(PatientEligibility, require_id(patient_id, "patient_id"))
            if row is None:
                raise NotFound(f"sessions has heard nothing from intake about patient {patient_id}")
            return eligibility_view(row)

    @rpc
    def record_rems_enrollment(self, patient_id, enrollment):
        """Spravato REMS: esketamine is refused until this is recorded."""
        given = parse(schemas.RemsEnrollmentInput, enrollment)
        self._require_clinician("record a REMS enrollment")
        with self.db.unit_of_work() as uow:
            row = self._eligibility_row(uow.session, require_id(patient_id, "patient_id"))
            row.rems_enrollment_id = given.enrollment_id
            row.rems_enrolled_at = given.enrolled_on
            return eligibility_view(row)

    @consumes(IntakeApproved)
    def on_intake_approved(self, uow, event):
        facts = event.data
        row = self._eligibility_row(uow.session, facts.patient_id, lock=True)
        row.mrn = facts.mrn or row.mrn
        if newer(event.occurred_at, row.intake_as_of):
            row.intake_status, row.intake_as_of = "approved", event.occurred_at
            row.weight_kg = facts.weight_kg
            phq9 = facts.scores.get("phq9")
            row.baseline_phq9 = phq9.total if phq9 is not None else None

    @consumes(IntakeDeclined)
    def on_intake_declined(self, uow, event):
        row = self._eligibility_row(uow.session, event.data.patient_id, lock=True)
        if newer(event.occurred_at, row.intake_as_of):
            row.intake_status, row.intake_as_of = "declined", event.occurred_at

    @consumes(ConsentRecorded)
    def on_consent_recorded(self, uow, event):
        if event.data.kind != "treatment":
            return
        row = self._eligibility_row(uow.session, event.data.patient_id, lock=True)
        if newer(event.occurred_at, row.consent_as_of):
            row.treatment_consent, row.consent_as_of = event.data.status, event.occurred_at

    @consumes(PatientRegistered)
    def on_patient_registered(self, uow, event):
        self._apply_patient_details(uow, event)

    @consumes(PatientUpdated)
    def on_patient_updated(self, uow, event):
        self._apply_patient_details(uow, event)

    def _apply_patient_details(self, uow, event):
        facts = event.data
        upsert_if_newer(uow.session, PatientEligibility.__table__, {
            "patient_id": facts.patient_id, "mrn": facts.mrn or None, "given_name": facts.given_name,
            "family_name": facts.family_name, "time_zone": facts.time_zone, "details_as_of": event.occurred_at,
        }, key="patient_id", as_of="details_as_of", keep_when_missing=("mrn",),
            on_insert={"intake_status": "unknown", "treatment_consent": "unknown"})

    def _eligibility_row(self, session, patient_id: str, lock: bool = False) -> PatientEligibility:
        row = session.get(PatientEligibility, patient_id, with_for_update=lock or None)
        if row is None:
            row = PatientEligibility(patient_id=patient_id, intake_status="unknown", treatment_consent="unknown")
            session.add(row)
            # Two first events for one patient racing: the loser's insert
            # fails, its handler is retried and then finds the row.
            session.flush()
        return row


def newer(occurred_at: datetime, as_of: datetime | None) -> bool:
    return as_of is None or occurred_at > as_utc(as_of)

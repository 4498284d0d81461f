"""Intake routes: patients, consents, history, questionnaires, decisions."""
from __future__ import annotations

import eventlet
from nameko.exceptions import UnknownService
from pydantic import Field

from common.errors import ServiceUnavailable
from common.views import AccessEntry, View
from gateway.http import ServiceRpc, api, fhir_json, idempotency_key, if_match, page_args, signed_by
from services.intake import answers, schemas

FRONT_DESK_AND_CLINICIANS = ("front_desk", "clinician")
# A service that does not answer is named in the merged access log rather
# than holding it up.
TRAIL_TIMEOUT_SECONDS = 5
CLINICIANS = ("clinician",)
ANY_STAFF = ("front_desk", "clinician", "billing")


class AccessLogEntry(AccessEntry):
    service: str = Field(description="the service whose trail the entry is from")


class AccessLogPage(View):
    """The merged trail: a page of entries, newest first, without a total
    (each service counts its own); the services that did not answer in time
    are named rather than waited for."""

    items: list[AccessLogEntry]
    limit: int
    offset: int
    unavailable_services: list[str]


class IntakeRoutes:
    intake = ServiceRpc("intake")

    @api("POST", "/api/v1/patients", roles=FRONT_DESK_AND_CLINICIANS, summary="Register a patient",
         tag="patients", body=schemas.PatientFields, status=201, idempotent=True, answer=answers.PatientView)
    def register_patient(self, request, user, payload):
        return self.intake.register_patient(payload, idempotency_key(request))

    @api("GET", "/api/v1/patients", roles=ANY_STAFF, summary="Search patients by name, date of birth or MRN",
         tag="patients", paginated=True,
         query=(("name", "string", "part of the given or family name"),
                ("date_of_birth", "string", "YYYY-MM-DD"), ("mrn", "string", "medical record number")), answer=answers.PatientPage)
    def find_patients(self, request, user, payload):
        criteria = {key: request.args[key] for key in ("name", "date_of_birth", "mrn") if request.args.get(key)}
        return self.intake.find_patients({**criteria, **page_args(request)})

    @api("GET", "/api/v1/patients/{patient_id}", roles=ANY_STAFF, summary="Read a patient's record", tag="patients",
         conditional=True, answer=answers.PatientRecordView)
    def get_patient(self, request, user, payload, patient_id):
        return self.intake.get_patient(patient_id)

    @api("PATCH", "/api/v1/patients/{patient_id}", roles=FRONT_DESK_AND_CLINICIANS,
         summary="Change a patient's details", tag="patients", body=schemas.PatientUpdate, conditional=True, answer=answers.PatientView)
    def update_patient(self, request, user, payload, patient_id):
        return self.intake.update_patient(patient_id, payload, if_match=if_match(request))

    @api("GET", "/api/v1/patients/{patient_id}/access-log", roles=("admin",),
         summary="Read who accessed a patient's records in any service", tag="patients", paginated=True, answer=AccessLogPage)
    def record_access(self, request, user, payload, patient_id):
        """Each service keeps the trail of its own part of the record; the
        admin sees them merged, newest first."""
        page = page_args(request)
        wanted = min(page["limit"] + page["offset"], 500)
        # Intake first: an unknown patient is a 404 from it.
        trails = {"intake": self.intake.list_record_access(patient_id, wanted, 0)}
        unavailable = []
        for name in ("sessions", "billing", "notifications"):
            try:
                with eventlet.Timeout(TRAIL_TIMEOUT_SECONDS):
                    trails[name] = getattr(self, name).list_record_access(patient_id, wanted, 0)
            except (eventlet.Timeout, UnknownService, ServiceUnavailable):
                unavailable.append(name)
        merged = sorted(({**entry, "service": name} for name, entries in trails.items() for entry in entries),
                        key=lambda entry: entry["at"], reverse=True)
        return {"items": merged[page["offset"]:wanted], **page, "unavailable_services": unavailable}

    @api("POST", "/api/v1/patients/{patient_id}/consents", roles=FRONT_DESK_AND_CLINICIANS,
         summary="Record a consent", tag="consents", body=schemas.ConsentInput, status=201, idempotent=True, answer=answers.ConsentView)
    def record_consent(self, request, user, payload, patient_id):
        return self.intake.record_consent(patient_id, payload, idempotency_key(request))

    @api("POST", "/api/v1/patients/{patient_id}/consents/withdrawals", roles=FRONT_DESK_AND_CLINICIANS,
         summary="Withdraw a consent", tag="consents", body=schemas.ConsentWithdrawal, answer=answers.ConsentView)
    def withdraw_consent(self, request, user, payload, patient_id):
        return self.intake.withdraw_consent(patient_id, payload)

    @api("GET", "/api/v1/patients/{patient_id}/consents", roles=ANY_STAFF, summary="List a patient's consents",
         tag="consents", answer=answers.ConsentList)
    def list_consents(self, request, user, payload, patient_id):
        return {"items": self.intake.list_consents(patient_id)}

    @api("PUT", "/api/v1/patients/{patient_id}/medical-history", roles=CLINICIANS,
         summary="Record the medical history and medications", tag="intake", body=schemas.MedicalHistoryInput,
         conditional=True, answer=answers.MedicalHistoryView)
    def record_medical_history(self, request, user, payload, patient_id):
        return self.intake.record_medical_history(patient_id, payload, if_match=if_match(request))

    @api("GET", "/api/v1/patients/{patient_id}/medical-history", roles=CLINICIANS,
         summary="Read the medical history", tag="intake", conditional=True, answer=answers.MedicalHistoryView)
    def get_medical_history(self, request, user, payload, patient_id):
        return self.intake.get_medical_history(patient_id)

    @api("POST", "/api/v1/patients/{patient_id}/questionnaires", roles=FRONT_DESK_AND_CLINICIANS,
         summary="Submit a PHQ-9, GAD-7, PCL-5 or C-SSRS questionnaire", tag="intake",
         body=schemas.QuestionnaireInput, status=201, idempotent=True, answer=answers.QuestionnaireView)
    def submit_questionnaire(self, request, user, payload, patient_id):
        return self.intake.submit_questionnaire(patient_id, payload, idempotency_key(request))

    @api("GET", "/api/v1/patients/{patient_id}/questionnaires", roles=CLINICIANS,
         summary="List questionnaire results", tag="intake",
         query=(("instrument", "string", "phq9, gad7, pcl5 or cssrs"),), answer=answers.QuestionnaireList)
    def list_questionnaires(self, request, user, payload, patient_id):
        return {"items": self.intake.list_questionnaires(patient_id, request.args.get("instrument"))}

    @api("POST", "/api/v1/patients/{patient_id}/intake/submission", roles=FRONT_DESK_AND_CLINICIANS,
         summary="Submit the completed intake for screening", tag="intake", answer=answers.IntakeView)
    def submit_intake(self, request, user, payload, patient_id):
        return self.intake.submit_intake(patient_id)

    @api("POST", "/api/v1/patients/{patient_id}/intake/screening", roles=CLINICIANS,
         summary="Screen for contraindications", tag="intake", body=schemas.ScreeningInput, answer=answers.ScreeningView)
    def screen_patient(self, request, user, payload, patient_id):
        return self.intake.screen_patient(patient_id, payload)

    @api("POST", "/api/v1/patients/{patient_id}/intake/approval", roles=CLINICIANS,
         summary="Approve the intake at the initial consultation", tag="intake", body=schemas.ApprovalInput, answer=answers.IntakeView)
    def approve_intake(self, request, user, payload, patient_id):
        return self.intake.approve_intake(patient_id, signed_by(payload, user))

    @api("POST", "/api/v1/patients/{patient_id}/intake/decline", roles=CLINICIANS,
         summary="Decline the intake at the initial consultation", tag="intake", body=schemas.DeclineInput, answer=answers.IntakeView)
    def decline_intake(self, request, user, payload, patient_id):
        return self.intake.decline_intake(patient_id, signed_by(payload, user))

    @api("GET", "/api/v1/patients/{patient_id}/fhir", roles=CLINICIANS,
         summary="Export the patient's intake record as a FHIR R4 Bundle", tag="fhir", fhir=True)
    def export_fhir(self, request, user, payload, patient_id):
        return fhir_json(self.intake.export_fhir(patient_id))

    @api("GET", "/api/v1/patients/{patient_id}/intake", roles=ANY_STAFF,
         summary="Read where the intake stands", tag="intake", answer=answers.IntakeRecordView)
    def get_intake(self, request, user, payload, patient_id):
        return self.intake.get_intake(patient_id)

"""Self-report routes: staff ask a patient to fill in a questionnaire by
link, and see what was asked. The patient's side is the patient pages
service, on its own port; nothing here is reachable from there."""
from __future__ import annotations

from common.validation import parse
from gateway.http import ServiceRpc, api, idempotency_key
from services.intake import answers
from services.intake.capabilities.self_report import SelfReportAsk

FRONT_DESK_AND_CLINICIANS = ("front_desk", "clinician")


class SelfReportRoutes:
    intake = ServiceRpc("intake")

    @api("POST", "/api/v1/patients/{patient_id}/self-report-requests", roles=FRONT_DESK_AND_CLINICIANS,
         summary="Send a patient a questionnaire to fill in by link", tag="questionnaires", body=SelfReportAsk,
         status=201, idempotent=True, answer=answers.SelfReportRequestView)
    def request_self_report(self, request, user, payload, patient_id):
        given = parse(SelfReportAsk, payload)
        return self.intake.request_self_report(patient_id, given.questionnaire, given.channel,
                                               idempotency_key(request))

    @api("GET", "/api/v1/patients/{patient_id}/self-report-requests", roles=FRONT_DESK_AND_CLINICIANS,
         summary="List the questionnaires a patient was sent by link", tag="questionnaires",
         answer=answers.SelfReportRequestList)
    def list_self_reports(self, request, user, payload, patient_id):
        return {"items": self.intake.list_self_reports(patient_id)}

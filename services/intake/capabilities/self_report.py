"""Self-report by secure link: staff ask for a questionnaire, the patient
answers it on the patient pages, intake scores and stores it like one
entered by staff.

The link's token is derived from the request id (common.self_report_links);
intake keeps only its hash, and the ``self_report.requested`` event carries
the request id, never the token."""
from __future__ import annotations

from datetime import timedelta
from typing import Literal

import sqlalchemy as sa

from common import idempotency, self_report_links as links
from common.events import as_utc, iso, utcnow
from common.handlers import consumes, rpc
from services.intake import domain, events
from services.intake.check_in import score_self_report
from services.intake.models import Patient, QuestionnaireResponse, RecordAccess, SelfReportRequest, new_id
from common.validation import Schema
from services.intake.schemas import questionnaire_view
from services.intake.capabilities.records import Records
from services.sessions.events import SelfReportDue

# Who the audit trail names for what the patient does through the link.
PATIENT_BY_LINK = "patient (self-report link)"
# Who asked, when the treatment plan's schedule did.
SCHEDULE_ACTOR = "self-report schedule (sessions)"
# How a self-reported response is told apart from one staff entered.
SELF_REPORT_SOURCE = "self_report"


class SelfReport(Records):
    """Also uses the service's ``config`` (its SELF_REPORT section)."""

    @rpc
    def request_self_report(self, patient_id, questionnaire, channel="any", idempotency_key=None):
        """Send the patient a single-use link to ``questionnaire`` (phq9,
        gad7, cssrs or check_in) by ``channel`` (email, sms or any: each the
        patient consented to). A retry with the same ``idempotency_key``
        sends nothing more."""
        domain.check_self_report_request(questionnaire, channel)
        with self.db.unit_of_work() as uow:
            claim = idempotency.claim(uow, "request_self_report", idempotency_key, patient_id, questionnaire, channel)
            if claim.replayed:
                RecordAccess.record(uow, patient_id, "self_report_requested_replayed")
                return claim.answer
            return claim.remember(self._send_link(uow, patient_id, questionnaire, channel, self.db.actor))

    @consumes(SelfReportDue)
    def on_self_report_due(self, uow, event):
        """The treatment plan's schedule says a form is due: the same request
        staff would make. Keyed on the due id, so a due announced twice (a
        replay, a second event for the same occasion) sends one link."""
        data = event.data
        domain.check_self_report_request(data.questionnaire, "any")
        uow.actor = SCHEDULE_ACTOR
        claim = idempotency.claim(uow, "self_report_due", data.due_id, data.patient_id, data.questionnaire)
        if claim.replayed:
            return
        claim.remember(self._send_link(uow, data.patient_id, data.questionnaire, "any", SCHEDULE_ACTOR))

    def _send_link(self, uow, patient_id, questionnaire, channel, requested_by) -> dict:
        settings = links.settings(self.config)
        record = self._patient(uow.session, patient_id)
        request = SelfReportRequest(
            request_id=new_id(), patient_number=record.number, questionnaire=questionnaire, channel=channel,
            requested_by=requested_by, requested_at=utcnow(),
            expires_at=utcnow() + timedelta(hours=settings["valid_hours"]),
        )
        request.token_hash = links.token_hash(links.token_for(settings["secret"], request.request_id))
        uow.session.add(request)
        uow.session.flush()
        RecordAccess.record(uow, record.patient_id, "self_report_requested")
        uow.emit(events.SelfReportRequested(
            patient_id=record.patient_id, request_id=request.request_id, channel=channel,
            expires_at=request.expires_at,
        ))
        return _request_view(request, record.patient_id)

    @rpc
    def list_self_reports(self, patient_id):
        with self.db.unit_of_work() as uow:
            record = self._patient(uow.session, patient_id)
            RecordAccess.record(uow, record.patient_id, "read")
            rows = uow.session.execute(
                sa.select(SelfReportRequest).where(SelfReportRequest.patient_number == record.number)
                .order_by(SelfReportRequest.requested_at)).scalars().all()
            return [_request_view(row, record.patient_id) for row in rows]

    @rpc
    def open_self_report(self, token):
        """What the patient page shows for ``token``: ``{"status": "open",
        "questionnaire": ..., "expires_at": ...}``, or a status of
        ``expired``, ``used`` or ``unknown`` with nothing else."""
        with self.db.unit_of_work() as uow:
            request = self._request_by_token(uow.session, token)
            if request is None:
                return {"status": "unknown"}
            state = domain.self_report_state(as_utc(request.expires_at), request.used_at, utcnow())
            if state != "open":
                return {"status": state}
            uow.actor = PATIENT_BY_LINK
            RecordAccess.record(uow, request_patient_id(uow.session, request), "self_report_opened")
            return {"status": "open", "questionnaire": request.questionnaire,
                    "expires_at": iso(request.expires_at)}

    @rpc
    def submit_self_report(self, token, answers):
        """Score and store the patient's answers; the link is used up. The
        answer is ``{"status": "submitted"}`` (no score: the patient page
        does not show one) or the status that stopped it."""
        with self.db.unit_of_work() as uow:
            request = self._request_by_token(uow.session, token, lock=True)
            if request is None:
                return {"status": "unknown"}
            now = utcnow()
            state = domain.self_report_state(as_utc(request.expires_at), request.used_at, now)
            if state != "open":
                return {"status": state}
            score = score_self_report(request.questionnaire, answers, pcl5_cutoff=self.rules.pcl5_cutoff)
            previous = uow.session.execute(
                sa.select(QuestionnaireResponse.total)
                .where(QuestionnaireResponse.patient_number == request.patient_number,
                       QuestionnaireResponse.instrument == score.instrument)
                .order_by(QuestionnaireResponse.completed_at.desc()).limit(1)).scalar_one_or_none()
            flags = domain.risk_flags_with_rise(score, previous)
            entry = QuestionnaireResponse(
                patient_number=request.patient_number, instrument=score.instrument, answers=list(answers),
                total=score.total, band=score.band, risk_flags=list(flags), completed_at=now,
                recorded_by=SELF_REPORT_SOURCE,
            )
            uow.session.add(entry)
            uow.session.flush()
            request.used_at, request.response_id = now, entry.response_id
            patient_id = request_patient_id(uow.session, request)
            uow.actor = PATIENT_BY_LINK
            RecordAccess.record(uow, patient_id, "self_report_submitted")
            mrn = f"MRN{request.patient_number:07d}"
            if flags:
                uow.emit(events.PatientRiskFlagged(
                    patient_id=patient_id, mrn=mrn, flags=list(flags), instrument=score.instrument,
                    band=score.band, response_id=entry.response_id,
                ))
            uow.emit(events.SelfReportCompleted(
                patient_id=patient_id, request_id=request.request_id, response_id=entry.response_id,
                instrument=score.instrument, total=score.total, band=score.band,
                previous_total=previous, risk_flags=list(flags), completed_at=now,
            ))
            return {"status": "submitted", "response": questionnaire_view(entry)}

    def _request_by_token(self, session, token, lock=False):
        if not links.well_formed(token):
            return None
        query = sa.select(SelfReportRequest).where(SelfReportRequest.token_hash == links.token_hash(token))
        if lock:
            query = query.with_for_update()
        return session.execute(query).scalar_one_or_none()


def request_patient_id(session, request: SelfReportRequest) -> str:
    return session.execute(sa.select(Patient.patient_id).where(Patient.number == request.patient_number)).scalar_one()


def _request_view(request: SelfReportRequest, patient_id: str) -> dict:
    return {
        "request_id": request.request_id, "patient_id": patient_id, "questionnaire": request.questionnaire,
        "channel": request.channel, "requested_by": request.requested_by, "requested_at": iso(request.requested_at),
        "expires_at": iso(request.expires_at), "used_at": iso(request.used_at) if request.used_at else None,
        "response_id": request.response_id,
    }


class SelfReportAsk(Schema):
    """What staff send to ask a patient for a self-report."""

    questionnaire: Literal["phq9", "gad7", "cssrs", "check_in"]
    channel: Literal["any", "email", "sms"] = "any"

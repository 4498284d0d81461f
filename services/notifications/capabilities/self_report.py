"""Self-report links: intake asked the patient to fill in a form
(``self_report.requested``); the link goes out by email and/or SMS through
the usual consent, preference and quiet-hours checks.

The message keeps only the request id; the link is built when the message
is rendered (common.self_report_links), so the token is in no row here."""
from __future__ import annotations

from common import self_report_links as links
from common.events import utcnow
from common.handlers import consumes
from services.intake.events import SelfReportRequested
from services.notifications.capabilities.messages_owed import MessagesOwed
from services.notifications.domain import PATIENT_CHANNELS, Channel, Kind

CHANNELS = {"any": PATIENT_CHANNELS, "email": (Channel.EMAIL,), "sms": (Channel.SMS,)}


class SelfReportLinks(MessagesOwed):
    """Also uses the service's ``config`` (its SELF_REPORT section)."""

    @consumes(SelfReportRequested)
    def on_self_report_requested(self, uow, event):
        data = event.data
        self._queue_for_patient(uow, event, Kind.SELF_REPORT_REQUEST, reason=data.request_id,
                                patient_id=data.patient_id, desired=utcnow(),
                                context={"request_id": data.request_id},
                                channels=CHANNELS.get(data.channel, PATIENT_CHANNELS))
        self._forward(uow, event)


def self_report_link(config: dict, context: dict) -> str:
    """The patient's link for a self-report message, built from its request id."""
    settings = links.settings(config)
    return links.link(settings["public_url"], links.token_for(settings["secret"], str(context["request_id"])))

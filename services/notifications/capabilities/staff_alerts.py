"""Alerts for the clinical staff: a patient's risk flag and a session's
vitals alert, queued urgent by email and/or the staff webhook."""
from __future__ import annotations

from common.events import iso, utcnow
from common.handlers import consumes
from services.intake.events import PatientRiskFlagged
from services.notifications import rendering
from services.notifications.capabilities.messages_owed import MessagesOwed
from services.notifications.domain import Channel, Kind
from services.sessions.events import SessionVitalsAlert


class StaffAlerts(MessagesOwed):

    @consumes(PatientRiskFlagged)
    def on_patient_risk_flagged(self, uow, event):
        data = event.data
        self._queue_staff_alert(uow, event, Kind.STAFF_RISK_ALERT, reason=data.response_id,
                                context={**data.facts(), "raised_at": iso(event.occurred_at)})
        self._forward(uow, event)

    @consumes(SessionVitalsAlert)
    def on_session_vitals_alert(self, uow, event):
        self._queue_staff_alert(uow, event, Kind.STAFF_VITALS_ALERT, reason=event.event_id,
                                context=event.data.facts())
        self._forward(uow, event)

    def _queue_staff_alert(self, uow, event, kind: Kind, *, reason: str, context: dict) -> None:
        """At once, day or night; by MRN only (the allow-list drops the rest)."""
        facts = {name: context.get(name) for name in rendering.ALLOWED_FACTS[kind]}
        channel_settings = self.channels.settings
        now = utcnow()
        common = dict(kind=kind, recipient="staff", reason=reason, due_at=now, context=facts, urgent=True,
                      patient_id=context.get("patient_id"))
        # With no staff channel configured at all, the email row still goes
        # dead visibly rather than the alert vanishing.
        if channel_settings.staff_emails or channel_settings.staff_webhook is None:
            self._queue(uow, event, channel=Channel.STAFF_EMAIL, **common)
        if channel_settings.staff_webhook is not None:
            self._queue(uow, event, channel=Channel.STAFF_WEBHOOK, target=channel_settings.staff_webhook.name,
                        **common)

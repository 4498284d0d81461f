"""The shape of every answer the notifications service gives (messages, their
delivery log and patients' preferences) as output models, for the OpenAPI
document and typed clients. The view builders in ``schemas`` build these
answers as plain dicts; the gateway's document tests hold the two together."""
from __future__ import annotations

from datetime import datetime

from common.views import Page, View


class MessageView(View):
    notification_id: str
    dedupe_key: str | None
    kind: str
    channel: str
    recipient: str | None
    patient_id: str | None
    appointment_id: str | None
    target: str | None
    urgent: bool
    status: str
    due_at: datetime | None
    attempts: int
    last_error: str | None
    sent_at: datetime | None
    created_at: datetime | None
    source_event_id: str | None


class MessagePage(Page[MessageView]):
    pass


class DeliveryAttemptView(View):
    at: datetime | None
    status: str
    attempt: int | None
    detail: str | None
    actor: str | None


class MessageRecordView(MessageView):
    """A message with every delivery attempt."""

    log: list[DeliveryAttemptView]


class ChannelPreference(View):
    consented: bool
    enabled: bool
    address_on_record: bool


class PreferencesView(View):
    patient_id: str
    time_zone: str | None
    email: ChannelPreference
    sms: ChannelPreference

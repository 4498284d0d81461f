"""The events notifications publishes (exchange ``notifications.events``):
one contract per event type and version. Pure: nothing here touches the
database or the broker.

No message body, contact detail or clinical value is ever in these events."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from common.events import EventData, Instant


class NotificationsEvent(EventData):
    producer = "notifications"


KIND = ("welcome, appointment_confirmation, course_confirmation, appointment_reminder, appointment_moved, "
        "appointment_cancelled, session_follow_up, invoice_issued, payment_receipt, invoice_overdue, "
        "refund_issued, staff_risk_alert, staff_vitals_alert, webhook")
CHANNEL = "email, sms, webhook, staff_email, staff_webhook"


class NotificationSent(NotificationsEvent):
    """A provider accepted a message (SMTP server, SMS provider, webhook
    receiver answered 2xx)."""

    type = "notification.sent"

    notification_id: str
    kind: str = Field(description=KIND)
    channel: str = Field(description=CHANNEL)
    recipient: Literal["patient", "staff", "webhook"]
    patient_id: str | None = Field(description="null for staff and webhook messages")
    dedupe_key: str = Field(description="the reason the message exists; one notification.sent per key "
                                        "in the ordinary case")
    sent_at: Instant


class NotificationFailed(NotificationsEvent):
    """An attempt failed, whether it will be retried (``dead: false``) or not
    (``dead: true``)."""

    type = "notification.failed"

    notification_id: str
    kind: str = Field(description=KIND)
    channel: str = Field(description=CHANNEL)
    recipient: Literal["patient", "staff", "webhook"]
    patient_id: str | None = Field(description="null for staff and webhook messages")
    attempts: int
    dead: bool
    error: str = Field(max_length=200, description="the provider's short answer")


class PreVisitReplyReceived(NotificationsEvent):
    """A patient answered the pre-visit message (fasting, escort) by SMS,
    matched to the appointment it was sent for. Only the classified answer
    leaves notifications, never the message body."""

    type = "previsit.reply_received"

    reply_id: str = Field(description="unique per inbound message")
    appointment_id: str
    patient_id: str
    answer: Literal["confirmed", "declined", "unrecognised"]
    received_at: Instant

"""Notifications' own tables: the read models it keeps from intake's and
sessions' events, the messages it owes and the log of every attempt."""
from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from common.audit import RecordAccessMixin
from common.events import utcnow


class Base(DeclarativeBase):
    type_annotation_map = {datetime: sa.DateTime(timezone=True), dict: sa.JSON, list: sa.JSON}


def new_id() -> str:
    return str(uuid.uuid4())


class Recipient(Base):
    """A patient as intake last described them: contact data, time zone,
    consents (each with the time of the fact applied), and the patient's
    own channel preferences, which only notifications holds."""

    __tablename__ = "recipients"

    patient_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    mrn: Mapped[str | None] = mapped_column(sa.String(20))
    given_name: Mapped[str | None] = mapped_column(sa.String(100))
    email: Mapped[str | None] = mapped_column(sa.String(254))
    # Indexed: an inbound SMS is matched to patients by the sending number.
    phone: Mapped[str | None] = mapped_column(sa.String(20), index=True)
    time_zone: Mapped[str | None] = mapped_column(sa.String(64))
    details_as_of: Mapped[datetime | None]
    email_consent: Mapped[bool] = mapped_column(default=False)
    email_consent_as_of: Mapped[datetime | None]
    sms_consent: Mapped[bool] = mapped_column(default=False)
    sms_consent_as_of: Mapped[datetime | None]
    email_enabled: Mapped[bool] = mapped_column(default=True)
    sms_enabled: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Appointment(Base):
    """What sessions last said about an appointment: enough to know whether
    its reminders are still wanted."""

    __tablename__ = "appointments"

    appointment_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    patient_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    starts_at: Mapped[datetime]
    cancelled: Mapped[bool] = mapped_column(default=False)
    as_of: Mapped[datetime]


class Message(Base):
    """One message owed to one recipient on one channel, for one reason."""

    __tablename__ = "messages"
    __table_args__ = (
        # The scheduler asks only for due rows: its cost follows the
        # messages due, not every appointment stored.
        sa.Index("ix_messages_due", "status", "due_at"),
    )

    notification_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    dedupe_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(40))
    channel: Mapped[str] = mapped_column(sa.String(20))
    recipient: Mapped[str] = mapped_column(sa.String(10))  # patient, staff, webhook
    patient_id: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    appointment_id: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    # A webhook subscriber's name; the URL and secret stay in configuration.
    target: Mapped[str | None] = mapped_column(sa.String(120))
    # Facts for the template (ids, times, amounts; never names or contact
    # data), or the event envelope a webhook forwards.
    context: Mapped[dict] = mapped_column(default=dict)
    urgent: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(sa.String(12))
    due_at: Mapped[datetime]
    claimed_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    source_event_id: Mapped[str | None] = mapped_column(sa.String(36))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    sent_at: Mapped[datetime | None]


class DeliveryLogEntry(Base):
    """Every step of a message's life, with the provider's answer."""

    __tablename__ = "delivery_log"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    notification_id: Mapped[str] = mapped_column(sa.ForeignKey("messages.notification_id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(sa.String(12))  # queued, deferred, sent, failed, retrying, dead, ...
    attempt: Mapped[int | None]
    detail: Mapped[str | None] = mapped_column(sa.String(500))
    actor: Mapped[str | None] = mapped_column(sa.String(160))


class InboundMessage(Base):
    """Every text the SMS provider brought in, as what it was read as, never
    its words; the unique provider id refuses a replayed request."""

    __tablename__ = "inbound_sms"

    inbound_id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    provider_message_id: Mapped[str] = mapped_column(sa.String(100), unique=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    # stop, start, help, yes, no or other (two_way_sms.Keyword).
    keyword: Mapped[str] = mapped_column(sa.String(10))
    # What came of it: consent_withdrawal_requested, consent_restore_requested,
    # help_answered, previsit_reply, unmatched (a known patient, nothing to
    # answer) or unknown_sender.
    outcome: Mapped[str] = mapped_column(sa.String(40))
    # The patients on record with the sending number (none for an unknown one).
    patient_ids: Mapped[list] = mapped_column(default=list)
    appointment_id: Mapped[str | None] = mapped_column(sa.String(36))
    # The last digits of an unknown sender's number only.
    sender_hint: Mapped[str | None] = mapped_column(sa.String(8))


class RecordAccess(RecordAccessMixin, Base):
    """Who read or changed a patient's messages, preferences and delivery log (see common.audit)."""

"""Notifications' copy of each patient (contact details, time zone and
the email and SMS consents, kept from intake's events), the welcome on a
first consent, and the patient's own channel preferences."""
from __future__ import annotations

from common.errors import NotFound
from common.etag import check_if_match
from common.events import utcnow
from common.handlers import consumes, rpc
from common.validation import parse
from services.intake.events import ConsentRecorded, PatientRegistered, PatientUpdated
from services.notifications import domain, schemas
from services.notifications.capabilities.messages_owed import MessagesOwed
from services.notifications.domain import Channel, Kind
from services.notifications.models import Recipient, RecordAccess


class Preferences(MessagesOwed):

    @consumes(PatientRegistered)
    def on_patient_registered(self, uow, event):
        self._apply_patient_details(uow, event)
        self._forward(uow, event)

    @consumes(PatientUpdated)
    def on_patient_updated(self, uow, event):
        self._apply_patient_details(uow, event)
        self._forward(uow, event)

    @consumes(ConsentRecorded)
    def on_consent_recorded(self, uow, event):
        data = event.data
        if data.kind in (Channel.EMAIL.value, Channel.SMS.value):
            channel = Channel(data.kind)
            recipient = self._recipient_for_update(uow, data.patient_id)
            if domain.is_newer(event.occurred_at, getattr(recipient, f"{channel.value}_consent_as_of")):
                setattr(recipient, f"{channel.value}_consent", data.status == "granted")
                setattr(recipient, f"{channel.value}_consent_as_of", event.occurred_at)
            # The welcome goes on each channel the first time the patient
            # consents to it (registration itself comes before any consent).
            if getattr(recipient, f"{channel.value}_consent"):
                self._queue_for_patient(uow, event, Kind.WELCOME, reason=recipient.patient_id,
                                        patient_id=recipient.patient_id, desired=utcnow(), channels=(channel,))
        self._forward(uow, event)

    @rpc
    def get_preferences(self, patient_id):
        with self.db.unit_of_work() as uow:
            recipient = self._known_recipient(uow.session, patient_id)
            RecordAccess.record(uow, recipient.patient_id, "read_preferences")
            return schemas.preferences_view(recipient)

    @rpc
    def set_preferences(self, patient_id, preferences, if_match=None):
        """``if_match``: the ETag of the preferences as the caller read them
        (``common.etag``); compared here with the row locked, so a change
        made meanwhile by someone else is a 412, not silently undone."""
        wanted = parse(schemas.PreferencesInput, preferences)
        with self.db.unit_of_work() as uow:
            recipient = self._known_recipient(uow.session, patient_id, lock=True)
            check_if_match(if_match, schemas.preferences_view(recipient))
            RecordAccess.record(uow, recipient.patient_id, "preferences")
            if wanted.email is not None:
                recipient.email_enabled = wanted.email
            if wanted.sms is not None:
                recipient.sms_enabled = wanted.sms
            uow.session.flush()
            return schemas.preferences_view(recipient)

    def _apply_patient_details(self, uow, event) -> None:
        data = event.data
        recipient = self._recipient_for_update(uow, data.patient_id)
        if not domain.is_newer(event.occurred_at, recipient.details_as_of):
            return
        recipient.mrn = data.mrn
        recipient.given_name = data.given_name
        recipient.email = data.email
        recipient.phone = data.phone
        recipient.time_zone = data.time_zone or domain.DEFAULT_TIME_ZONE
        recipient.details_as_of = event.occurred_at

    def _known_recipient(self, session, patient_id, lock=False) -> Recipient:
        recipient = session.get(Recipient, str(patient_id), with_for_update=lock or None)
        if recipient is None:
            raise NotFound("notifications has no record of this patient")
        return recipient

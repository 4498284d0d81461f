"""Notifications routes: the delivery log, dead messages, resend, a
patient's channel preferences, and the FHIR export of a patient's messages."""
from __future__ import annotations

from gateway.http import ServiceRpc, api, fhir_json, if_match, page_args, query_int
from services.notifications import answers, schemas

ANY_STAFF = ("front_desk", "clinician", "billing")
FRONT_DESK_AND_CLINICIANS = ("front_desk", "clinician")
FILTERS = ("patient_id", "appointment_id", "status", "kind", "channel")


class NotificationsRoutes:
    notifications = ServiceRpc("notifications")

    @api("GET", "/api/v1/notifications", roles=ANY_STAFF, summary="List messages and their delivery status",
         tag="notifications", paginated=True,
         query=(("patient_id", "string", "one patient's messages"),
                ("appointment_id", "string", "one appointment's confirmation, reminders and notices"),
                ("status", "string", "queued, retrying, sent, dead, skipped or cancelled"),
                ("kind", "string", "e.g. appointment_reminder, invoice_issued, staff_vitals_alert"),
                ("channel", "string", "email, sms, webhook, staff_email or staff_webhook")), answer=answers.MessagePage)
    def list_notifications(self, request, user, payload):
        criteria = {key: request.args[key] for key in FILTERS if request.args.get(key)}
        return self.notifications.list_messages({**criteria, **page_args(request)})

    @api("GET", "/api/v1/notifications/dead", roles=ANY_STAFF,
         summary="List messages that will not be retried any more", tag="notifications", paginated=True, answer=answers.MessagePage)
    def list_dead_notifications(self, request, user, payload):
        page = page_args(request)
        return self.notifications.list_dead_messages(page["limit"], page["offset"])

    @api("GET", "/api/v1/notifications/{notification_id}", roles=ANY_STAFF,
         summary="Read a message with every delivery attempt", tag="notifications", answer=answers.MessageRecordView)
    def get_notification(self, request, user, payload, notification_id):
        return self.notifications.get_message(notification_id)

    @api("POST", "/api/v1/notifications/{notification_id}/resend", roles=ANY_STAFF,
         summary="Send a dead, skipped or waiting message again now", tag="notifications",
         query=(("urgent", "boolean", "true to send even in the patient's quiet hours"),), answer=answers.MessageView)
    def resend_notification(self, request, user, payload, notification_id):
        urgent = request.args.get("urgent", "").lower() in ("1", "true", "yes")
        return self.notifications.resend(notification_id, {"urgent": urgent})

    @api("GET", "/api/v1/patients/{patient_id}/notification-preferences", roles=ANY_STAFF,
         summary="Read a patient's consented and preferred channels", tag="notifications", conditional=True,
         answer=answers.PreferencesView)
    def get_notification_preferences(self, request, user, payload, patient_id):
        return self.notifications.get_preferences(patient_id)

    @api("PUT", "/api/v1/patients/{patient_id}/notification-preferences", roles=FRONT_DESK_AND_CLINICIANS,
         summary="Turn a patient's email or SMS messages on or off", tag="notifications",
         body=schemas.PreferencesInput, conditional=True, answer=answers.PreferencesView)
    def set_notification_preferences(self, request, user, payload, patient_id):
        return self.notifications.set_preferences(patient_id, payload, if_match=if_match(request))

    @api("GET", "/api/v1/patients/{patient_id}/fhir/communications", roles=ANY_STAFF,
         summary="Export the messages sent to a patient as a FHIR R4 Bundle of Communication resources",
         tag="fhir",
         query=(("limit", "integer", "messages per page, 1-100 (default 100), oldest first"),
                ("offset", "integer", "messages to skip (default 0)")), fhir=True)
    def export_fhir_communications(self, request, user, payload, patient_id):
        limit = query_int(request, "limit", 100, 1, 100)
        offset = query_int(request, "offset", 0, 0, 10**9)
        return fhir_json(self.notifications.export_fhir_communications(patient_id, limit, offset))

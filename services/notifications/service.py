"""The notifications service: turns clinic events into messages owed and
delivers them by email, SMS and signed webhooks, logging every attempt.
Each capability's entrypoints are a class in ``capabilities/``; this module
composes them into the one nameko service that ``nameko run
services.notifications.service`` and ``clinic run notifications`` start."""
from __future__ import annotations

# Modules, not classes: `nameko run services.notifications.service` runs every
# class with entrypoints it finds at the top of this module, and only the
# composed service must be there.
import common.service
from services.notifications import dependencies
from services.notifications.capabilities import (
    delivery, delivery_log, inbound_sms, patient_messages, preferences, self_report, staff_alerts,
)
from services.notifications.channels import Channels


class NotificationsService(preferences.Preferences, patient_messages.PatientMessages, staff_alerts.StaffAlerts,
                           delivery.Delivery, delivery_log.DeliveryLog, self_report.SelfReportLinks,
                           inbound_sms.InboundSmsWebhook, common.service.ClinicService):
    name = "notifications"

    channels = Channels()
    settings = common.service.ConfigSection("NOTIFICATIONS", dependencies.settings_at_start)

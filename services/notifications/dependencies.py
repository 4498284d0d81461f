"""Notifications' seams to configuration: its settings (the NOTIFICATIONS
section), read once at start, with a warning said then when patient-facing
text would name the treatment."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from services.notifications import domain
from services.notifications.two_way_sms import InboundSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    timing: domain.Timing
    retry: domain.RetryPolicy
    clinic: str
    clinic_phone: str
    batch: int
    claim: timedelta
    parallel: int
    # The SMS provider's signed inbound webhook (two_way_sms).
    inbound: "InboundSettings"

    @classmethod
    def from_config(cls, section: dict) -> "Settings":
        return cls(
            timing=domain.Timing.from_config(section),
            retry=domain.RetryPolicy.from_config(section),
            clinic=display_name(section),
            clinic_phone=str(section.get("CLINIC_PHONE") or "the clinic"),
            batch=int(section.get("SCHEDULER_BATCH", 50)),
            # Longer than the slowest send (SMTP/HTTP timeouts), so another
            # replica does not take a message that is still being sent.
            claim=timedelta(seconds=float(section.get("CLAIM_SECONDS", 120))),
            parallel=int(section.get("SEND_CONCURRENCY", 8)),
            inbound=InboundSettings.from_config(section),
        )


def display_name(section: dict) -> str:
    """The name patients see in every SMS, subject and as the email sender.
    ``CLINIC_NAME`` here is the older key, still honoured; the clinic's
    legal name for billing is a separate setting (``BILLING.CLINIC_NAME``)."""
    return str(section.get("CLINIC_DISPLAY_NAME") or section.get("CLINIC_NAME") or domain.DEFAULT_DISPLAY_NAME)


def warn_if_patient_facing_text_discloses_treatment(section: dict) -> None:
    """Said once at start: the messages still go out, but whoever sees a
    patient's lock screen would learn what they are treated for."""
    for key, value in (("CLINIC_DISPLAY_NAME", display_name(section)), ("SMTP_FROM", section.get("SMTP_FROM")),
                       ("SMS_FROM", section.get("SMS_FROM"))):
        words = domain.treatment_words_in(str(value) if value else None)
        if words:
            log.warning("NOTIFICATIONS.%s %r names treatment (%s) and is shown on every patient SMS or email; "
                        "set a neutral CLINIC_DISPLAY_NAME / sender", key, value, ", ".join(words))


def settings_at_start(section: dict) -> Settings:
    """The NOTIFICATIONS section as the service reads it once at start
    (ConfigSection), with the warnings said then."""
    warn_if_patient_facing_text_discloses_treatment(section)
    settings = Settings.from_config(section)
    if settings.inbound.secret and not section.get("CLINIC_PHONE"):
        log.warning("NOTIFICATIONS.CLINIC_PHONE is not set: a patient who texts HELP is told to call "
                    "\"%s\" with no number", settings.clinic_phone)
    return settings

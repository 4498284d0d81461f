"""The intake service: patients, consents, medical history, scored
questionnaires, contraindication screening and the clinician's decision;
every read or write of a patient's record is audited. Each capability's
entrypoints are a class in ``capabilities/``; this module composes them into
the one nameko service that ``nameko run services.intake.service`` and
``clinic run intake`` start."""
from __future__ import annotations

# Modules, not classes: `nameko run services.intake.service` runs every class
# with entrypoints it finds at the top of this module, and only the composed
# service must be there.
import common.service
from services.intake import domain
from services.intake.capabilities import (
    consents_and_history, decisions, patients, questionnaires, record_access, self_report, sms_keywords,
)


class IntakeService(patients.Patients, consents_and_history.ConsentsAndHistory,
                    questionnaires.QuestionnairesAndScreening, decisions.Decisions,
                    record_access.PatientRecordAccess, self_report.SelfReport, sms_keywords.SmsKeywords,
                    common.service.ClinicService):
    name = "intake"

    rules = common.service.ConfigSection("INTAKE", domain.ScreeningRules.from_config)

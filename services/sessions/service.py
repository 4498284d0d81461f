"""The sessions service: treatment plans, scheduling, monitored session
records, REMS forms and outcomes, plus the eligibility read model built from
intake's events. Each capability's entrypoints are a class in
``capabilities/``; this module composes them into the one nameko service
that ``nameko run services.sessions.service`` and ``clinic run sessions``
start."""
from __future__ import annotations

# Modules, not classes: `nameko run services.sessions.service` runs every class
# with entrypoints it finds at the top of this module, and only the composed
# service must be there.
import common.service
from services.sessions import domain
from services.sessions.capabilities import (
    course_report, discharge, eligibility, front_desk, outcomes, plans, rems_forms, resources, scheduling,
    self_report_schedule, self_reports, session_records, trajectory,
)


class SessionsService(resources.Resources, eligibility.Eligibility, plans.Plans, scheduling.Scheduling,
                      session_records.SessionRecords, discharge.Discharge, rems_forms.RemsForms,
                      outcomes.Outcomes, self_reports.SelfReports, self_report_schedule.SelfReportSchedule,
                      trajectory.OutcomeTrajectory, front_desk.FrontDesk, course_report.CourseReport,
                      common.service.ClinicService):
    name = "sessions"

    rules = common.service.ConfigSection("SESSIONS", domain.Rules.from_config)

"""Outcomes: PHQ-9 scores outside check-in, the course summary (response,
remission, next maintenance), and who read or changed the record."""
from __future__ import annotations

from common import idempotency
from common.events import utcnow
from common.handlers import rpc
from common.validation import paging, parse, require_id
from services.sessions import schemas
from services.sessions.capabilities.chart import Chart
from services.sessions.models import OutcomeScore, RecordAccess
from services.sessions.trajectory import ScoreSource


class Outcomes(Chart):

    @rpc
    def record_phq9(self, plan_id, score, idempotency_key=None):
        """A PHQ-9 total outside check-in, e.g. the end-of-course score."""
        given = parse(schemas.PHQ9Input, score)
        with self.db.unit_of_work() as uow:
            claim = idempotency.claim(uow, "record_phq9", idempotency_key, plan_id, given)
            if claim.replayed:
                plan = self._plan(uow.session, plan_id)
                self._audit(uow, plan.patient_id, "phq9_replayed", plan.plan_id)
                return claim.answer
            plan = self._plan(uow.session, plan_id, lock=True)
            uow.session.add(OutcomeScore(plan_id=plan.plan_id, instrument="phq9", source=ScoreSource.STAFF.value,
                                          total=given.total, recorded_at=utcnow()))
            uow.session.flush()
            self._audit(uow, plan.patient_id, "phq9", plan.plan_id)
            return claim.remember(self._course_summary(uow.session, plan))

    @rpc
    def get_course_summary(self, plan_id):
        with self.db.unit_of_work() as uow:
            plan = self._plan(uow.session, plan_id)
            self._audit(uow, plan.patient_id, "summary_read", plan.plan_id)
            return self._course_summary(uow.session, plan)

    @rpc
    def list_record_access(self, patient_id, limit=100, offset=0):
        """Who read or changed the patient's treatment record, newest first."""
        limit, offset = paging(limit, offset, most=200)
        with self.db.read() as session:
            return RecordAccess.trail(session, require_id(patient_id, "patient_id"), limit, offset)

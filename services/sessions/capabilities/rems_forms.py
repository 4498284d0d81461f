"""Spravato REMS Patient Monitoring Forms: the overdue list and submission."""
from __future__ import annotations

import sqlalchemy as sa

from common.errors import Conflict, NotFound
from common.events import utcnow
from common.handlers import rpc
from common.validation import paging, parse, require_id
from services.sessions import schemas
from services.sessions.capabilities.chart import Chart, parse_day
from services.sessions.models import MonitoringForm
from services.sessions.schemas import form_view


class RemsForms(Chart):

    @rpc
    def list_monitoring_forms(self, overdue_only=True, as_of=None, limit=50, offset=0):
        """Patient Monitoring Forms; by default the overdue ones (not
        submitted and past their 7-day deadline), oldest first."""
        today = parse_day(as_of) if as_of else self._rules().hours.local_date(utcnow())
        query = sa.select(MonitoringForm)
        if overdue_only:
            query = query.where(MonitoringForm.submitted_at.is_(None), MonitoringForm.due_on < today)
        limit, offset = paging(limit, offset, most=200)
        with self.db.read() as session:
            total = session.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
            rows = session.execute(query.order_by(MonitoringForm.due_on, MonitoringForm.form_id)
                                   .limit(limit).offset(offset)).scalars()
            return {"items": [form_view(r, today) for r in rows], "total": total, "limit": limit, "offset": offset}

    @rpc
    def submit_monitoring_form(self, form_id, submission):
        given = parse(schemas.MonitoringFormSubmission, submission)
        with self.db.unit_of_work() as uow:
            form = uow.session.get(MonitoringForm, require_id(form_id, "form_id"), with_for_update=True)
            if form is None:
                raise NotFound(f"no monitoring form {form_id}")
            if form.submitted_at:
                raise Conflict("the monitoring form is already submitted")
            form.submitted_at, form.submitted_by, form.confirmation = utcnow(), self.db.actor, given.confirmation
            return form_view(form, self._rules().hours.local_date(utcnow()))

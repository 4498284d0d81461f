"""Treatment plans: route, dosing and the induction course a clinician
prescribes."""
from __future__ import annotations

import sqlalchemy as sa

from common import idempotency
from common.etag import check_if_match
from common.errors import ValidationFailed
from common.events import utcnow
from common.handlers import rpc
from common.validation import parse, require_id
from services.sessions import domain, events, schemas
from services.sessions.capabilities.chart import Chart
from services.sessions.capabilities.front_desk import completed_inductions, open_task
from services.sessions.retention import TaskKind, stopped_after_first
from services.sessions.models import TreatmentPlan
from services.sessions.schemas import plan_view
from services.sessions.self_report_schedule import OFF, schedule_or_default


class Plans(Chart):

    @rpc
    def create_plan(self, plan, idempotency_key=None):
        given = parse(schemas.PlanInput, plan)
        actor = self._require_clinician("create a treatment plan")
        rules = self._rules()
        route = domain.route(given.route)
        # Kept to 0.1 mg like the charted dose, and rounded the same way: down.
        max_dose = domain.round_dose(given.max_dose_mg or route.default_max_dose_mg)
        mg_per_kg = given.mg_per_kg if given.mg_per_kg is not None or route.fixed_doses_mg else route.default_mg_per_kg
        domain.check_plan_dosing(given.route, mg_per_kg, given.fixed_dose_mg, max_dose, given.max_mg_per_kg)
        with self.db.unit_of_work() as uow:
            claim = idempotency.claim(uow, "create_plan", idempotency_key, given)
            if claim.replayed:
                self._audit(uow, claim.answer["patient_id"], "plan_create_replayed", claim.answer["plan_id"])
                return claim.answer
            eligibility = self._check_eligible(uow.session, given.patient_id, given.route)
            record = TreatmentPlan(
                patient_id=given.patient_id, route=given.route, drug=route.drug, indication=given.indication,
                mg_per_kg=mg_per_kg, fixed_dose_mg=given.fixed_dose_mg, max_dose_mg=max_dose,
                max_mg_per_kg=given.max_mg_per_kg, induction_sessions=given.induction_sessions or rules.course.induction_sessions,
                min_hours_apart=given.min_hours_apart if given.min_hours_apart is not None
                else rules.course.min_hours_apart,
                maintenance_interval_days=given.maintenance_interval_days,
                baseline_phq9=eligibility.baseline_phq9, created_by=actor,
                self_report_schedule=schedule_or_default(
                    given.self_report_schedule.given() if given.self_report_schedule else None),
            )
            uow.session.add(record)
            uow.session.flush()
            self._audit(uow, record.patient_id, "plan_create", record.plan_id)
            uow.emit(events.PlanCreated(
                patient_id=record.patient_id, plan_id=record.plan_id, route=record.route,
                drug=record.drug, induction_sessions=record.induction_sessions,
                mg_per_kg=record.mg_per_kg, max_dose_mg=record.max_dose_mg,
                max_mg_per_kg=record.max_mg_per_kg, created_by=actor,
            ))
            return claim.remember(plan_view(record))

    @rpc
    def update_plan(self, plan_id, changes, if_match=None):
        given = parse(schemas.PlanChanges, changes)
        changed = given.model_dump(exclude_unset=True)
        if not changed:
            raise ValidationFailed("no fields to change", [{"field": "", "message": "give at least one field"}])
        actor = self._require_clinician("change a treatment plan")
        with self.db.unit_of_work() as uow:
            record = self._plan(uow.session, plan_id, lock=True)
            check_if_match(if_match, plan_view(record))
            if "self_report_schedule" in changed:
                changes_to = given.self_report_schedule
                changed["self_report_schedule"] = None if changes_to is None else {
                    **(record.self_report_schedule or OFF), **changes_to.given()}
            if changed.get("max_dose_mg") is not None:
                changed["max_dose_mg"] = domain.round_dose(changed["max_dose_mg"])
            old_status = record.status
            for name, value in changed.items():
                setattr(record, name, value)
            if record.status != old_status:
                self._status_changed(uow, record, old_status)
            domain.check_plan_dosing(record.route, record.mg_per_kg, record.fixed_dose_mg, record.max_dose_mg,
                                     record.max_mg_per_kg)
            record.updated_by = actor
            self._audit(uow, record.patient_id, "plan_update", record.plan_id)
            return plan_view(record)

    def _status_changed(self, uow, plan, old_status: str) -> None:
        plan.closed_at = utcnow() if plan.status != "active" else None
        if stopped_after_first(old_status=old_status, new_status=plan.status,
                               completed_inductions=completed_inductions(uow.session, plan.plan_id),
                               course_completed=plan.course_completed_at is not None):
            open_task(uow, TaskKind.STOPPED_AFTER_FIRST, plan.patient_id, plan.plan_id, None,
                      "the induction course was stopped after its first session")

    @rpc
    def get_plan(self, plan_id):
        with self.db.unit_of_work() as uow:
            record = self._plan(uow.session, plan_id)
            self._audit(uow, record.patient_id, "plan_read", record.plan_id)
            return plan_view(record)

    @rpc
    def list_plans(self, patient_id):
        with self.db.unit_of_work() as uow:
            rows = uow.session.execute(sa.select(TreatmentPlan).where(
                TreatmentPlan.patient_id == require_id(patient_id, "patient_id"))
                .order_by(TreatmentPlan.created_at)).scalars().all()
            self._audit(uow, patient_id, "plan_list")
            return [plan_view(r) for r in rows]

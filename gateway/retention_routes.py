"""Course retention routes: the front desk's call list (tasks opened when a
course may lapse or a visit is unconfirmed) and the clinic's monthly course
report (aggregates only)."""
from __future__ import annotations

from gateway.http import ServiceRpc, api, if_match, page_args
from services.sessions import answers, schemas

FRONT_DESK_AND_CLINICIANS = ("front_desk", "clinician")


class RetentionRoutes:
    sessions = ServiceRpc("sessions")

    @api("GET", "/api/v1/front-desk-tasks", roles=FRONT_DESK_AND_CLINICIANS,
         summary="List front-desk tasks (open ones by default), oldest first", tag="retention", paginated=True,
         query=(("state", "string", "open (default) or closed; empty lists both"),
                ("kind", "string", "no_next_booking, no_show, stopped_after_first or previsit_unconfirmed"),
                ("patient_id", "string", "one patient's tasks")),
         answer=answers.FrontDeskTaskPage)
    def list_front_desk_tasks(self, request, user, payload):
        page = page_args(request)
        return self.sessions.list_front_desk_tasks(request.args.get("state", "open"), request.args.get("kind"),
                                                   request.args.get("patient_id"), page["limit"], page["offset"])

    @api("GET", "/api/v1/front-desk-tasks/{task_id}", roles=FRONT_DESK_AND_CLINICIANS,
         summary="Read a front-desk task", tag="retention", conditional=True, answer=answers.FrontDeskTaskView)
    def get_front_desk_task(self, request, user, payload, task_id):
        return self.sessions.get_front_desk_task(task_id)

    @api("POST", "/api/v1/front-desk-tasks/{task_id}/closure", roles=FRONT_DESK_AND_CLINICIANS,
         summary="Close a front-desk task: booked, or declined with the patient's reason", tag="retention",
         body=schemas.TaskClosure, conditional=True, answer=answers.FrontDeskTaskView)
    def close_front_desk_task(self, request, user, payload, task_id):
        return self.sessions.close_front_desk_task(task_id, payload, if_match=if_match(request))

    @api("GET", "/api/v1/reports/retention", roles=FRONT_DESK_AND_CLINICIANS,
         summary="Monthly course report: started, completed, stopped after one, days to complete, "
                 "response and remission (no patient data)", tag="retention",
         query=(("from", "string", "YYYY-MM, first month (default: eleven months before to)"),
                ("to", "string", "YYYY-MM, last month (default: this month)")),
         answer=answers.RetentionReport)
    def get_retention_report(self, request, user, payload):
        return self.sessions.get_retention_report(request.args.get("from"), request.args.get("to"))

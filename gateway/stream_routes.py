"""Live updates: a staff UI subscribes to the clinic's events that concern
its role over server-sent events (what is streamed: gateway/stream.py; how:
gateway/live_updates.py)."""
from __future__ import annotations

from pydantic import BaseModel, Field
from werkzeug.wrappers import Response

from common.errors import ValidationFailed
from gateway import stream
from gateway.http import api, query_int
from gateway.live_updates import TICKET_SECONDS, LiveUpdates
from gateway.signin import StaffUser, Unauthorized

ANY_STAFF = ("front_desk", "clinician", "billing")
EVENT_STREAM = "text/event-stream"
# A bounded stream for tests and scripted clients; a UI leaves it out.
MAX_SECONDS_LIMIT = 86400


class StreamTicket(BaseModel):
    ticket: str = Field(description=f"one use, within {TICKET_SECONDS} s: GET /api/v1/stream?ticket=...")
    expires_at: str = Field(description="UTC, ISO 8601")


def _bearer_or_ticket(self, request) -> StaffUser:
    """Browsers' EventSource cannot send an Authorization header: it signs
    in with a one-use ticket in the query instead."""
    ticket = request.args.get("ticket")
    if ticket is None:
        return self.sign_in.authenticate(request)
    user = self.live_updates.redeem_ticket(ticket)
    if user is None:
        raise Unauthorized("the stream ticket is unknown, used or expired; ask for a new one")
    return user


class StreamRoutes:
    live_updates = LiveUpdates()

    @api("POST", "/api/v1/stream/tickets", roles=ANY_STAFF, tag="live updates", status=201, answer=StreamTicket,
         summary="Get a one-use ticket to open the live-update stream from a browser's EventSource")
    def issue_stream_ticket(self, request, user, payload):
        return self.live_updates.issue_ticket(user)

    @api("GET", "/api/v1/stream", roles=ANY_STAFF, tag="live updates", media_type=EVENT_STREAM,
         authenticate=_bearer_or_ticket,
         summary="Subscribe to the clinic's events that concern your role (server-sent events)",
         query=(("ticket", "string", "a ticket from POST /api/v1/stream/tickets, instead of the bearer token"),
                ("types", "string", "comma-separated event types to narrow the stream to, e.g. "
                                    "session.vitals_alert,patient.risk_flagged"),
                ("last_event_id", "string", "the id of the last event received, as the Last-Event-ID header"),
                ("max_seconds", "integer", f"end the stream after this many seconds (1-{MAX_SECONDS_LIMIT}); "
                                           "a UI leaves it out")))
    def live_stream(self, request, user, payload):
        try:
            types = stream.types_for(user.role, request.args.get("types"))
        except stream.UnknownTypes as exc:
            raise ValidationFailed(f"the {user.role} role's stream has no event type {exc}",
                                   [{"field": "types", "message": f"not streamed to this role: {exc}"}]) from None
        max_seconds = (query_int(request, "max_seconds", 0, 1, MAX_SECONDS_LIMIT)
                       if request.args.get("max_seconds") not in (None, "") else None)
        cursor = stream.parse_cursor(request.headers.get("Last-Event-ID") or request.args.get("last_event_id"))
        live = self.live_updates.open(user.role, types, cursor, max_seconds)
        # eventlet's server otherwise holds small writes back until 4 kB.
        request.environ["eventlet.minimum_write_chunk_size"] = 0
        response = Response(live, status=200, mimetype=EVENT_STREAM, direct_passthrough=True)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Accel-Buffering"] = "no"
        response.headers["X-Correlation-ID"] = self.context["correlation_id"]
        return response


"""Live updates: a staff UI subscribes to the clinic's events that concern
its role over server-sent events (what is streamed: gateway/stream.py; how:
gateway/live_updates.py)."""
from __future__ import annotations

from pydantic import BaseModel, Field
from werkzeug.wrappers import Response

from common.errors import ValidationFailed
from gateway import stream
from gateway.http import api, query_int
from gateway.live_updates import DEFAULT_MAX_CLIENTS, HEARTBEAT_SECONDS, TICKET_SECONDS, LiveUpdates
from gateway.signin import StaffUser, Unauthorized

ANY_STAFF = ("front_desk", "clinician", "billing")
EVENT_STREAM = "text/event-stream"
# A bounded stream for tests and scripted clients; a UI leaves it out.
MAX_SECONDS_LIMIT = 86400


class StreamTicket(BaseModel):
    ticket: str = Field(description=f"one use, within {TICKET_SECONDS} s: GET /api/v1/stream?ticket=...")
    expires_at: str = Field(description="UTC, ISO 8601")


def _role_lines() -> str:
    return "\n".join(f"- {role}: {', '.join(sorted(types))}" for role, types in stream.TYPES_BY_ROLE.items())


STREAM_DESCRIPTION = f"""Server-sent events (text/event-stream). Sign in with the bearer token, or, from a
browser's EventSource (which cannot send headers), with `?ticket=` from `POST /api/v1/stream/tickets`
(one use, {TICKET_SECONDS} s).

Each message: `id:` an opaque cursor, `event:` the event type as on the bus (e.g. `session.vitals_alert`),
`data:` one JSON object with `type`, `event_id`, `occurred_at` and the event's ids, states and times only
(never names, scores, doses, amounts or message bodies; read the record for more). A message with only an `id:`
moves the cursor past events not shown to this role. A comment line (`: heartbeat`) is sent every
{int(HEARTBEAT_SECONDS)} s; `retry:` on connect.

Event types by role (`?types=a,b` narrows; a type outside the role's list is a 422):
{_role_lines()}
(`notification.failed` is streamed only for a message that is dead: no more retries.)

Reconnect with the `Last-Event-ID` header (or `?last_event_id=`): every event published since that cursor is
replayed in order, then the stream continues live. The window is the broker's retention (STREAM_MAX_AGE,
default 24 h; STREAM_MAX_BYTES, default 1 GB). A cursor older than the window, or one this API never gave out,
is answered with `event: reset` (and an empty `id:`): reload what the screen shows, then carry on with the same
connection. Without a cursor the stream starts with what is published from now on.

At most STREAM_MAX_CLIENTS streams per gateway process (default {DEFAULT_MAX_CLIENTS}); beyond that a 503
with Retry-After. `max_seconds` ends the stream (tests, scripts); a UI leaves it out."""


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
         description=f"The ticket stands for you and your role only, for one GET /api/v1/stream within "
                     f"{TICKET_SECONDS} s; it carries nothing else.",
         summary="Get a one-use ticket to open the live-update stream from a browser's EventSource")
    def issue_stream_ticket(self, request, user, payload):
        return self.live_updates.issue_ticket(user)

    @api("GET", "/api/v1/stream", roles=ANY_STAFF, tag="live updates", media_type=EVENT_STREAM,
         answer=stream.SSE_EVENT_SCHEMA,
         authenticate=_bearer_or_ticket, description=STREAM_DESCRIPTION,
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


"""How every gateway route authenticates, reads JSON, calls a service and
answers, so each route is only the mapping from HTTP to RPC."""
from __future__ import annotations

import functools
import json
import logging
import re
import uuid
from dataclasses import dataclass

import eventlet
from amqp.exceptions import ConnectionError as AmqpConnectionError
from kombu.exceptions import OperationalError as BrokerUnreachable
from nameko.exceptions import RemoteError, UnknownService
from nameko.extensions import DependencyProvider
from nameko.web.handlers import http
from werkzeug.wrappers import Response

from common.broker import RpcProxy
from common.engines import Timeouts
from common.etag import etag, parse_if_match
from common.errors import ClinicError, ERRORS_BY_NAME, Forbidden, ServiceUnavailable, ValidationFailed
from common.service import PROBLEM_JSON, json_response, problem_response
from common.validation import control_character_errors
from gateway.signin import ROLES, StaffUser, Unauthorized, cors_origins, parse_tokens  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

# How long a route waits for the owning service before answering 503
# (GATEWAY_RPC_TIMEOUT). Longer than a service's own database budget
# (DATABASE_CONNECT_TIMEOUT + DATABASE_STATEMENT_TIMEOUT), so a service that
# is waiting for its database gives up and rolls back before the caller is
# told it failed.
RPC_TIMEOUT_SECONDS = 30
# Told to a client with every 503: when trying again is worth it.
RETRY_AFTER_SECONDS = 5

# Every route registered with ``api``; the OpenAPI document is built from it.
ROUTES: list["RouteSpec"] = []


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str
    roles: tuple[str, ...]
    summary: str
    tag: str
    operation_id: str
    body: type | None
    status: int
    paginated: bool
    query: tuple[tuple[str, str, str], ...]  # (name, type, description)
    idempotent: bool = False
    # Reads answer ETag; changes take If-Match (and may answer 412).
    conditional: bool = False
    # The success body's output model (a pydantic model named as the
    # OpenAPI component, or a JSON schema as it is); FHIR routes answer
    # application/fhir+json.
    answer: type | dict | None = None
    media_type: str = "application/json"
    # Also answers a printable HTML document (``format=html``).
    html: bool = False
    # More than the summary says, for the OpenAPI document.
    description: str = ""


class MalformedRequest(ClinicError):
    code = "malformed_request"
    http_status = 400
    title = "Malformed request"


class MethodNotAllowed(ClinicError):
    code = "method_not_allowed"
    http_status = 405
    title = "Method not allowed"


def problem(status: int, title: str, detail: str, code: str, **extra) -> Response:
    return problem_response(status, title, detail, code, _problem_headers(status), **extra)


def _problem_headers(status: int) -> dict:
    if status == 401:
        return {"WWW-Authenticate": 'Bearer realm="clinic"'}
    if status == 503:
        return {"Retry-After": str(RETRY_AFTER_SECONDS)}
    return {}


def _problem_response(status: int, body: dict) -> Response:
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    response.headers.update(_problem_headers(status))
    return response


# The broker refused, reset or timed out a connection: the request never
# reached a service (or its answer could not come back).
BROKER_FAULTS = (BrokerUnreachable, AmqpConnectionError, ConnectionError, TimeoutError)


def problem_from(exc: Exception) -> Response:
    if isinstance(exc, RemoteError):
        # An error type this gateway does not import: map it by name.
        known = ERRORS_BY_NAME.get(exc.exc_type)
        if known is not None:
            exc = known(str(exc.value))
        else:
            log.error("unexpected error from a service: %s", exc.exc_type)
            return problem(502, "A clinic service failed", "the service could not complete the request",
                           "upstream_error")
    elif isinstance(exc, UnknownService):
        # No replica is consuming the service's queue (all stopped, or
        # restarting).
        exc = ServiceUnavailable(f"the {exc.args[0]} service is not running; try again shortly")
    elif isinstance(exc, BROKER_FAULTS):
        log.warning("the message broker is unreachable: %s", type(exc).__name__)
        exc = ServiceUnavailable("the clinic's message broker is unreachable; try again shortly")
    if isinstance(exc, ClinicError):
        return _problem_response(exc.http_status, exc.to_problem())
    log.exception("gateway route failed")
    return problem(500, "Internal error", "the request could not be completed", "internal_error")


FHIR_JSON = "application/fhir+json"


def fhir_json(resource: dict) -> Response:
    return Response(json.dumps(resource), status=200, mimetype=FHIR_JSON)


SVG = "image/svg+xml"


def svg_image(text: str) -> Response:
    """An SVG the service drew. It is opened straight in a browser tab too:
    nothing in it may run or load anything (no script, no outside fetch)."""
    response = Response(text, status=200, mimetype=SVG)
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def read_json(request):
    raw = request.get_data(cache=True, parse_form_data=False)
    if not raw:
        raise MalformedRequest("a JSON request body is required")
    try:
        return json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedRequest(f"the body is not valid JSON: {exc}") from None


def query_int(request, name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationFailed(f"{name} must be a whole number", [{"field": name, "message": "must be an integer"}]) from None
    if not low <= value <= high:
        raise ValidationFailed(f"{name} must be between {low} and {high}",
                               [{"field": name, "message": f"must be between {low} and {high}"}])
    return value


def page_args(request) -> dict:
    return {"limit": query_int(request, "limit", 20, 1, 100), "offset": query_int(request, "offset", 0, 0, 10**9)}


IDEMPOTENCY_KEY_MAX = 200


def idempotency_key(request) -> str | None:
    """The client's key on a create: a retried request with the same key
    gets the first answer back instead of a second patient, booking or
    payment. The owning service stores it (``common.idempotency``)."""
    key = (request.headers.get("Idempotency-Key") or "").strip()
    if len(key) > IDEMPOTENCY_KEY_MAX:
        raise ValidationFailed(f"Idempotency-Key is longer than {IDEMPOTENCY_KEY_MAX} characters",
                               [{"field": "Idempotency-Key", "message": "too long"}])
    return key or None


def if_match(request) -> list[str] | None:
    """The client's ``If-Match`` on a change: the ``ETag`` of the version it
    read. Absent: the change goes ahead whatever happened meanwhile."""
    return parse_if_match(request.headers.get("If-Match"))


def correlation_id(request) -> str:
    """The caller's ``X-Correlation-ID`` if it is a plain token (it is
    stored with every event and audit row), else a new one."""
    given = (request.headers.get("X-Correlation-ID") or "").strip()[:64]
    return given if CORRELATION_ID.match(given) else str(uuid.uuid4())


CORRELATION_ID = re.compile(r"^[\x21-\x7e]{1,64}$")


def refuse_control_characters_in_url(request, path_params: dict) -> None:
    """Path segments and query values are text fields too (ids, a search
    name): a control character in one is a 422 naming it, not a database
    error."""
    errors = control_character_errors(path_params)
    for name, value in request.args.items(multi=True):
        errors += control_character_errors({name: value})
    if errors:
        raise ValidationFailed("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors)


def signed_by(payload, user: StaffUser, field: str = "clinician"):
    """The decision is the authenticated user's, whatever the body says."""
    return {**payload, field: user.user} if isinstance(payload, dict) else payload


def rpc_timeout(config: dict) -> float:
    return float(config.get("GATEWAY_RPC_TIMEOUT") or RPC_TIMEOUT_SECONDS)


class ServiceRpc(RpcProxy):
    """The gateway's proxy to a clinic service. A request that no replica
    has taken off the queue while there was still time to answer it expires
    unread: otherwise a service that was down (or a long backlog) would
    carry out, minutes later, a registration whose caller was told 503."""

    def setup(self):
        config = self.container.config
        # Taken later than this, the service's database budget could outlast
        # the gateway's wait.
        unread_for = rpc_timeout(config) - Timeouts.from_config(config).budget
        if unread_for < 1:
            log.warning("GATEWAY_RPC_TIMEOUT should exceed DATABASE_CONNECT_TIMEOUT + DATABASE_STATEMENT_TIMEOUT")
            unread_for = 1
        self.options.setdefault("expiration", unread_for)
        super().setup()


class RequestContext(DependencyProvider):
    """The worker's context data: what is put here (the caller's identity and
    correlation id) travels with every RPC call the route makes."""

    def get_dependency(self, worker_ctx):
        return worker_ctx.data


def api(method: str, path: str, *, roles, summary: str, tag: str, body: type | None = None,
        status: int = 200, paginated: bool = False, query=(), idempotent: bool = False,
        conditional: bool = False, answer: type | dict | None = None, fhir: bool = False, html: bool = False,
        media_type: str | None = None, authenticate=None, description: str = ""):
    """Declare a gateway route. The handler receives ``(self, request, user,
    payload, **path_params)`` and returns the JSON body (or a Response).

    ``conditional``: a read of one record answers its ``ETag``; a change of
    one record passes ``if_match(request)`` to the service, which compares it
    with the record inside its transaction (412 when it changed meanwhile).
    ``answer``: the output model of the success body, for the OpenAPI
    document; ``fhir``: the route answers a FHIR resource (``fhir_json``);
    ``media_type``: what else the success body is (e.g. text/event-stream);
    ``authenticate(self, request)``: a route that also takes another proof
    of identity than the bearer token (it returns the ``StaffUser``)."""
    roles = tuple(roles)
    nameko_path = path.replace("{", "<").replace("}", ">")

    def decorator(fn):
        spec = RouteSpec(method, path, roles, summary, tag, fn.__name__, body, status, paginated, tuple(query),
                         idempotent, conditional, answer,
                         media_type or (FHIR_JSON if fhir else "application/json"), html, description)
        ROUTES.append(spec)

        @functools.wraps(fn)
        def handler(self, request, **path_params):
            try:
                user = authenticate(self, request) if authenticate else self.sign_in.authenticate(request)
                if user.role not in roles and user.role != "admin":
                    raise Forbidden(f"the {user.role} role may not {summary[0].lower() + summary[1:]}")
                self.context["actor"] = user.actor
                self.context["correlation_id"] = correlation_id(request)
                refuse_control_characters_in_url(request, path_params)
                payload = read_json(request) if body is not None else None
                with eventlet.Timeout(rpc_timeout(self.config), ServiceUnavailable("the service did not answer in time; "
                                                                  "try again shortly")):
                    result = fn(self, request, user, payload, **path_params)
            except Exception as exc:  # every failure answers problem+json
                return allow_origin(request, problem_from(exc), self.config)
            if isinstance(result, Response):
                return allow_origin(request, result, self.config)
            response = json_response(status, result)
            response.headers["X-Correlation-ID"] = self.context["correlation_id"]
            if conditional and method == "GET":
                response.headers["ETag"] = etag(result)
            return allow_origin(request, response, self.config)

        return http(method, nameko_path)(handler)

    return decorator



# What a staff UI on another origin may send and read (CORS_ORIGINS).
CORS_REQUEST_HEADERS = "Authorization, Content-Type, Idempotency-Key, If-Match, Last-Event-ID, X-Correlation-ID"
CORS_EXPOSED_HEADERS = "ETag, Location, Retry-After, X-Correlation-ID"


def allow_origin(request, response: Response, config) -> Response:
    """Only the UI origins the clinic configured may read answers from a
    browser; any other origin gets no CORS headers and so nothing."""
    origin = request.headers.get("Origin")
    if origin and origin in cors_origins(config):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSED_HEADERS
        response.headers.add("Vary", "Origin")
    return response


def preflight(request, config) -> Response | None:
    """The browser's OPTIONS question before a cross-origin call, answered
    for the configured origins only."""
    origin = request.headers.get("Origin")
    if request.method != "OPTIONS" or not origin or not request.headers.get("Access-Control-Request-Method"):
        return None
    if origin not in cors_origins(config):
        return problem(403, "Forbidden", "this origin may not call the clinic's API", "forbidden")
    response = Response(status=204)
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE"
    response.headers["Access-Control-Allow-Headers"] = CORS_REQUEST_HEADERS
    response.headers["Access-Control-Max-Age"] = "600"
    response.headers["Vary"] = "Origin"
    return response

"""The gateway service: one nameko service whose HTTP routes are gathered
from a routes class per clinic service."""
from __future__ import annotations

import logging

import eventlet
import httpx
from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from nameko.web.handlers import http

from gateway.http import MethodNotAllowed, RequestContext, json_response, preflight, problem, problem_from
from gateway.signin import SignIn
from gateway.billing_routes import BillingRoutes
from gateway.console_routes import ConsoleRoutes
from gateway.intake_routes import IntakeRoutes
from gateway.self_report_routes import SelfReportRoutes
from gateway.notifications_routes import NotificationsRoutes
from gateway.retention_routes import RetentionRoutes
from gateway.sessions_routes import SessionsRoutes
from gateway.stream_routes import StreamRoutes
from gateway.openapi import document
from common.service import ObservedService


class SignInProvider(DependencyProvider):
    """OpenID Connect access tokens from the clinic's identity provider and,
    when configured for development, static tokens (gateway/signin.py)."""

    def setup(self):
        self.sign_in = SignIn.from_config(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.sign_in


ALL_METHODS = "GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS"

# Each service's /ready answers within its own 2 s check; a little more
# covers the request itself.
PROBE_TIMEOUT_SECONDS = 3.0

log = logging.getLogger(__name__)


class GatewayService(IntakeRoutes, SelfReportRoutes, BillingRoutes, SessionsRoutes, NotificationsRoutes, RetentionRoutes,
                     StreamRoutes, ConsoleRoutes, ObservedService):
    name = "gateway"

    config = Config()
    sign_in = SignInProvider()
    context = RequestContext()

    @http("GET", "/api/v1/openapi.json")
    def openapi(self, request):
        return json_response(200, document())

    @http("GET", "/health")
    def health(self, request):
        return json_response(200, {"status": "ok", "service": "gateway"})

    @http("GET", "/api/v1/health")
    def services_health(self, request):
        """Readiness of every service, as each reports it. The services are
        asked all at once, so the answer takes as long as the slowest of
        them (at most PROBE_TIMEOUT_SECONDS), not the sum."""
        targets = dict(self.config.get("SERVICE_HEALTH_URLS") or {})
        pool = eventlet.GreenPool(max(1, len(targets)))
        services = dict(zip(targets, pool.imap(_readiness, targets, targets.values())))
        healthy = all(status == "ready" for status in services.values())
        return json_response(200 if healthy else 503,
                             {"status": "ok" if healthy else "degraded", "services": services})

    @http(ALL_METHODS, "/<path:anything>")
    def no_such_route(self, request, anything):
        # Anything no route claims still answers in problem+json.
        from gateway.http import ROUTES

        answer = preflight(request, self.config)
        if answer is not None:
            return answer
        path = "/" + anything
        if any(_matches(spec.path, path) for spec in ROUTES):
            return problem_from(MethodNotAllowed(f"{request.method} is not allowed on {path}"))
        return problem(404, "Not found", f"no route {path}", "not_found")


def _readiness(name: str, url: str) -> str:
    """One service's own word on its readiness, or ``unreachable``."""
    status = "unreachable"
    try:
        # A hard bound over connect and read together: httpx's timeout is
        # per phase, and a server that trickles its answer could outlast it.
        with eventlet.Timeout(PROBE_TIMEOUT_SECONDS):
            status = httpx.get(f"{url}/ready", timeout=PROBE_TIMEOUT_SECONDS).json().get("status", "unknown")
    except (Exception, eventlet.Timeout):
        pass
    log.debug("probe %s: %s", name, status)
    return status


def _matches(template: str, path: str) -> bool:
    parts, wanted = template.strip("/").split("/"), path.strip("/").split("/")
    return len(parts) == len(wanted) and all(
        p.startswith("{") or p == w for p, w in zip(parts, wanted))

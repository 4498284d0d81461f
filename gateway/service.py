"""The gateway service: one nameko service whose HTTP routes are gathered
from a routes class per clinic service."""
from __future__ import annotations

import httpx
from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from nameko.web.handlers import http

from gateway.http import MethodNotAllowed, RequestContext, json_response, parse_tokens, problem, problem_from
from gateway.billing_routes import BillingRoutes
from gateway.intake_routes import IntakeRoutes
from gateway.notifications_routes import NotificationsRoutes
from gateway.sessions_routes import SessionsRoutes
from gateway.openapi import document
from common.service import ObservedService


class Tokens(DependencyProvider):
    def setup(self):
        self.tokens = parse_tokens(self.container.config.get("GATEWAY_TOKENS"))

    def get_dependency(self, worker_ctx):
        return self.tokens


ALL_METHODS = "GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS"


class GatewayService(IntakeRoutes, BillingRoutes, SessionsRoutes, NotificationsRoutes, ObservedService):
    name = "gateway"

    config = Config()
    tokens = Tokens()
    context = RequestContext()

    @http("GET", "/api/v1/openapi.json")
    def openapi(self, request):
        return json_response(200, document())

    @http("GET", "/health")
    def health(self, request):
        return json_response(200, {"status": "ok", "service": "gateway"})

    @http("GET", "/api/v1/health")
    def services_health(self, request):
        """Readiness of every service, as each reports it."""
        services = {}
        for name, url in (self.config.get("SERVICE_HEALTH_URLS") or {}).items():
            try:
                answer = httpx.get(f"{url}/ready", timeout=3)
                services[name] = answer.json().get("status", "unknown")
            except Exception:
                services[name] = "unreachable"
        healthy = all(status == "ready" for status in services.values())
        return json_response(200 if healthy else 503,
                             {"status": "ok" if healthy else "degraded", "services": services})

    @http(ALL_METHODS, "/<path:anything>")
    def no_such_route(self, request, anything):
        # Anything no route claims still answers in problem+json.
        from gateway.http import ROUTES

        path = "/" + anything
        if any(_matches(spec.path, path) for spec in ROUTES):
            return problem_from(MethodNotAllowed(f"{request.method} is not allowed on {path}"))
        return problem(404, "Not found", f"no route {path}", "not_found")


def _matches(template: str, path: str) -> bool:
    parts, wanted = template.strip("/").split("/"), path.strip("/").split("/")
    return len(parts) == len(wanted) and all(
        p.startswith("{") or p == w for p, w in zip(parts, wanted))

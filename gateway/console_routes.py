"""The reference staff console: static pages and small ES modules under
gateway/console/, served by the gateway at /console/. The console itself
speaks only the public API (/api/v1/...) with the bearer token it gets from
the clinic's identity provider (authorization code flow with PKCE, in the
browser); these routes hand out files and the sign-in settings, nothing
about any patient."""
from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

from nameko.web.handlers import http
from werkzeug.wrappers import Response

from gateway.signin import parse_tokens

CONSOLE_DIR = Path(__file__).with_name("console")
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}
# Only the files shipped with the gateway, looked up by name: nothing a
# request path says can reach outside the folder.
FILES = {path.name: path for path in sorted(CONSOLE_DIR.iterdir())
         if path.is_file() and path.suffix in CONTENT_TYPES} if CONSOLE_DIR.is_dir() else {}
DEFAULT_SCOPES = "openid profile"


def console_settings(config: dict) -> dict:
    """What the browser needs to sign in and to show the clinic's day: the
    identity provider's issuer (its discovery document names the authorize
    and token endpoints), the console's client id and scopes."""
    issuer = str(config.get("CONSOLE_OIDC_ISSUER") or config.get("OIDC_ISSUER") or "").strip()
    client_id = str(config.get("CONSOLE_OIDC_CLIENT_ID") or "").strip()
    oidc = None
    if issuer and client_id:
        oidc = {"issuer": issuer.rstrip("/"), "client_id": client_id,
                "scopes": str(config.get("CONSOLE_OIDC_SCOPES") or DEFAULT_SCOPES).strip()}
    sessions = config.get("SESSIONS") or {}
    return {
        "oidc": oidc,
        # bin/run-clinic's static tokens: the console offers to paste one,
        # only when no identity provider is configured for it.
        "development_tokens": oidc is None and bool(parse_tokens(config.get("GATEWAY_TOKENS"))),
        "clinic_time_zone": str(sessions.get("time_zone") or "America/New_York"),
        "api": "/api/v1",
    }


def content_security_policy(config: dict) -> str:
    """Scripts, styles and images from the gateway only, no inline script;
    the browser may talk to the gateway and to the identity provider (its
    discovery document and token endpoint), nothing else."""
    connect = ["'self'"]
    issuer = console_settings(config)["oidc"]
    if issuer:
        parts = urlsplit(issuer["issuer"])
        connect.append(f"{parts.scheme}://{parts.netloc}")
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src {' '.join(connect)}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


def _secured(response: Response, config: dict) -> Response:
    response.headers["Content-Security-Policy"] = content_security_policy(config)
    response.headers["X-Content-Type-Options"] = "nosniff"
    # The authorization code comes back in the console's URL: never sent on.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-cache"
    return response


def _not_found(config: dict) -> Response:
    return _secured(Response("not found\n", status=404, mimetype="text/plain"), config)


class ConsoleRoutes:
    @http("GET", "/console")
    def console_root(self, request):
        return Response(status=308, headers={"Location": "/console/"})

    @http("GET", "/console/")
    def console_index(self, request):
        return self._console_file("index.html")

    @http("GET", "/console/config.json")
    def console_config(self, request):
        response = Response(json.dumps(console_settings(self.config)), mimetype="application/json")
        return _secured(response, self.config)

    @http("GET", "/console/<path:name>")
    def console_file(self, request, name):
        return self._console_file(name)

    def _console_file(self, name: str) -> Response:
        path = FILES.get(name)
        if path is None:
            return _not_found(self.config)
        response = Response(path.read_bytes(), mimetype=CONTENT_TYPES[path.suffix].split(";")[0])
        response.headers["Content-Type"] = CONTENT_TYPES[path.suffix]
        return _secured(response, self.config)

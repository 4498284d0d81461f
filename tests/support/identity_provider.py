"""A stand-in for the clinic's OpenID Connect identity provider: keys the
test makes (RSA and EC), a JWKS and a discovery document served from a
thread on a free loopback port, and access tokens signed with them.

For browser sign-in (the staff console) it also runs the authorization code
flow with PKCE: ``/authorize`` shows a one-click sign-in page (a button per
test user, usable with Tab and Enter) and redirects back with a code;
``/token`` swaps the code for an access token only with the verifier whose
S256 challenge came with the code, once."""
from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

AUDIENCE = "clinic-api"
CONSOLE_CLIENT_ID = "clinic-console"
# Who may sign in on the authorize page: username -> (shown as, provider roles).
STAFF = {
    "frank.front": ("Frank Front, front desk", ("desk",)),
    "dr.grey": ("Dr Meredith Grey, clinician", ("doctor",)),
    "bea.biller": ("Bea Biller, billing", ("accounts",)),
    "ian.it": ("Ian IT, administrator", ("it",)),
}


class SigningKey:
    def __init__(self, kind: str = "RS256"):
        self.kid = f"{kind.lower()}-{uuid.uuid4().hex[:8]}"
        self.alg = kind
        if kind == "RS256":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.public_jwk = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.public_jwk = json.loads(ECAlgorithm.to_jwk(self.private.public_key()))
        self.public_jwk.update({"kid": self.kid, "alg": self.alg, "use": "sig"})


class IdentityProvider:
    def __init__(self):
        self.keys: list[SigningKey] = [SigningKey("RS256"), SigningKey("ES256")]
        self.jwks_requests = 0
        self.client_ids = {CONSOLE_CLIENT_ID}
        # code -> what the authorize request bound it to
        self.codes: dict[str, dict] = {}
        self.token_requests: list[dict] = []
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                path, _, query = self.path.partition("?")
                if path == "/.well-known/openid-configuration":
                    body = {"issuer": provider.issuer, "jwks_uri": provider.jwks_url,
                            "authorization_endpoint": f"{provider.issuer}/authorize",
                            "token_endpoint": f"{provider.issuer}/token",
                            "response_types_supported": ["code"], "grant_types_supported": ["authorization_code"],
                            "code_challenge_methods_supported": ["S256"],
                            "id_token_signing_alg_values_supported": ["RS256", "ES256"]}
                elif path == "/jwks":
                    provider.jwks_requests += 1
                    body = {"keys": [key.public_jwk for key in provider.keys]}
                elif path == "/authorize":
                    self._page(*provider.sign_in_page(parse_qs(query)))
                    return
                else:
                    self.send_error(404)
                    return
                self._json(200, body)

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
                path = self.path.partition("?")[0]
                if path == "/authorize":
                    status, location, page = provider.signed_in(form)
                    if location:
                        self.send_response(302)
                        self.send_header("Location", location)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                    else:
                        self._page(status, page)
                elif path == "/token":
                    self._json(*provider.exchange(form))
                else:
                    self.send_error(404)

            def _json(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                # The console reads discovery and swaps its code from another origin.
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()
                self.wfile.write(data)

            def _page(self, status: int, page: str):
                data = page.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_port}"
        self.jwks_url = f"{self.issuer}/jwks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.stopped = False

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        if not self.stopped:
            self.stopped = True
            self.server.shutdown()
            self.server.server_close()

    def rotate(self) -> SigningKey:
        """A new signing key published in place of the RSA one."""
        key = SigningKey("RS256")
        self.keys = [key] + [k for k in self.keys if k.alg != "RS256"]
        return key

    def token(self, roles=("desk",), *, key: SigningKey | None = None, lifetime: int = 300, claims=None,
              **overrides) -> str:
        key = key or self.keys[0]
        now = int(time.time())
        payload = {"iss": self.issuer, "aud": AUDIENCE, "sub": str(uuid.uuid4()), "iat": now,
                   "exp": now + lifetime, "preferred_username": "dr.grey",
                   "realm_access": {"roles": list(roles)}, **(claims or {})}
        payload.update(overrides)
        return jwt.encode(payload, key.private, algorithm=key.alg, headers={"kid": key.kid})

    # -- authorization code flow with PKCE ---------------------------------

    def sign_in_page(self, query: dict) -> tuple[int, str]:
        given = {name: values[0] for name, values in query.items()}
        problem = self._bad_authorize_request(given)
        if problem:
            return 400, _page("Sign-in refused", f"<p role='alert'>{html.escape(problem)}</p>")
        hidden = "".join(f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
                         for name, value in given.items())
        buttons = "".join(f'<li><button type="submit" name="username" value="{html.escape(user)}">'
                          f"Sign in as {html.escape(shown)}</button></li>" for user, (shown, _) in STAFF.items())
        return 200, _page("Clinic sign-in", f"<form method='post' action='/authorize'>{hidden}"
                                            f"<ul>{buttons}</ul></form>")

    def signed_in(self, form: dict) -> tuple[int, str | None, str]:
        given = {name: values[0] for name, values in form.items()}
        problem = self._bad_authorize_request(given) or (
            None if given.get("username") in STAFF else "choose who signs in")
        if problem:
            return 400, None, _page("Sign-in refused", f"<p role='alert'>{html.escape(problem)}</p>")
        code = secrets.token_urlsafe(24)
        self.codes[code] = {"client_id": given["client_id"], "redirect_uri": given["redirect_uri"],
                            "challenge": given["code_challenge"], "username": given["username"],
                            "nonce": given.get("nonce"), "at": time.time()}
        return 302, f"{given['redirect_uri']}?{urlencode({'code': code, 'state': given.get('state', '')})}", ""

    def _bad_authorize_request(self, given: dict) -> str | None:
        if given.get("response_type") != "code":
            return "response_type must be code"
        if given.get("client_id") not in self.client_ids:
            return "unknown client"
        if urlsplit(given.get("redirect_uri", "")).scheme not in ("http", "https"):
            return "redirect_uri is required"
        if given.get("code_challenge_method") != "S256" or len(given.get("code_challenge", "")) < 43:
            return "a PKCE code_challenge with method S256 is required"
        return None

    def exchange(self, form: dict) -> tuple[int, dict]:
        given = {name: values[0] for name, values in form.items()}
        self.token_requests.append(given)
        if given.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type"}
        bound = self.codes.pop(given.get("code", ""), None)  # single use
        if bound is None or time.time() - bound["at"] > 60:
            return 400, {"error": "invalid_grant", "error_description": "unknown, used or expired code"}
        if (given.get("client_id"), given.get("redirect_uri")) != (bound["client_id"], bound["redirect_uri"]):
            return 400, {"error": "invalid_grant", "error_description": "client or redirect_uri differs"}
        verifier = given.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if not 43 <= len(verifier) <= 128 or not secrets.compare_digest(challenge, bound["challenge"]):
            return 400, {"error": "invalid_grant", "error_description": "the PKCE code_verifier does not match"}
        user = bound["username"]
        roles = STAFF[user][1]
        access = self.token(roles, lifetime=600, preferred_username=user)
        identity = self.token(roles, lifetime=600, preferred_username=user, aud=bound["client_id"],
                              name=STAFF[user][0], **({"nonce": bound["nonce"]} if bound["nonce"] else {}))
        return 200, {"access_token": access, "token_type": "Bearer", "expires_in": 600, "id_token": identity,
                     "scope": "openid profile"}

    def console_config(self) -> dict:
        """The gateway's settings for a console signing in here."""
        return {**self.config(), "CONSOLE_OIDC_CLIENT_ID": CONSOLE_CLIENT_ID}

    def config(self, *, discover: bool = False) -> dict:
        return {"OIDC_ISSUER": self.issuer, "OIDC_AUDIENCE": AUDIENCE,
                "OIDC_JWKS_URL": "" if discover else self.jwks_url,
                "OIDC_ROLES_CLAIM": "realm_access.roles",
                "OIDC_ROLE_MAP": "desk:front_desk,doctor:clinician,accounts:billing,it:admin"}


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
            "<style>button{font:inherit;padding:.6em 1em;margin:.3em 0}button:focus{outline:3px solid #1a5fb4}"
            "ul{list-style:none;padding:0}</style></head>"
            f"<body><main><h1>{title}</h1>{body}</main></body></html>")

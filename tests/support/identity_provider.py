"""A stand-in for the clinic's OpenID Connect identity provider: keys the
test makes (RSA and EC), a JWKS and a discovery document served from a
thread on a free loopback port, and access tokens signed with them."""
from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

AUDIENCE = "clinic-api"


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
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path == "/.well-known/openid-configuration":
                    body = {"issuer": provider.issuer, "jwks_uri": provider.jwks_url}
                elif self.path == "/jwks":
                    provider.jwks_requests += 1
                    body = {"keys": [key.public_jwk for key in provider.keys]}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
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

    def config(self, *, discover: bool = False) -> dict:
        return {"OIDC_ISSUER": self.issuer, "OIDC_AUDIENCE": AUDIENCE,
                "OIDC_JWKS_URL": "" if discover else self.jwks_url,
                "OIDC_ROLES_CLAIM": "realm_access.roles",
                "OIDC_ROLE_MAP": "desk:front_desk,doctor:clinician,accounts:billing,it:admin"}

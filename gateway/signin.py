"""Who is calling the gateway: an OpenID Connect access token from the
clinic's identity provider, or (for development only, when configured) a
static bearer token.

An access token is a JWT signed by the provider (RS256 or ES256). Its issuer,
audience, expiry and signature are checked against the provider's published
keys (its JWKS), which are cached and fetched again when a token names a key
id the cache does not hold (the provider rotated its keys), at most once per
``JWKS_REFRESH_SECONDS`` so a stream of forged key ids cannot make the
gateway hammer the provider. The staff role comes from a claim (a dotted
path such as ``realm_access.roles``) mapped to the clinic's four roles.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import httpx
import jwt

from common.errors import ClinicError, Forbidden, ServiceUnavailable

log = logging.getLogger(__name__)

ROLES = ("front_desk", "clinician", "billing", "admin")
ALGORITHMS = ("RS256", "ES256")
# Unknown key ids trigger at most one JWKS fetch per this many seconds.
JWKS_REFRESH_SECONDS = 30.0
# Tolerated clock difference with the provider when checking exp/nbf/iat.
LEEWAY_SECONDS = 30
FETCH_TIMEOUT_SECONDS = 5.0


class Unauthorized(ClinicError):
    code = "unauthorized"
    http_status = 401
    title = "Authentication required"


@dataclass(frozen=True)
class StaffUser:
    user: str
    role: str

    @property
    def actor(self) -> str:
        return f"{self.user} ({self.role})"


def parse_tokens(spec) -> dict[str, StaffUser]:
    """``GATEWAY_TOKENS``: "token:role:user" triples, comma separated (or a
    mapping token -> {role, user} in YAML). Empty means no static tokens."""
    tokens: dict[str, StaffUser] = {}
    if isinstance(spec, dict):
        for token, entry in spec.items():
            tokens[str(token)] = StaffUser(entry.get("user", entry["role"]), entry["role"])
        return tokens
    for triple in str(spec or "").split(","):
        parts = triple.strip().split(":")
        if len(parts) < 2 or not parts[0]:
            continue
        role = parts[1]
        if role not in ROLES:
            raise ValueError(f"GATEWAY_TOKENS: unknown role {role!r}")
        tokens[parts[0]] = StaffUser(parts[2] if len(parts) > 2 and parts[2] else role, role)
    return tokens


def parse_role_map(spec) -> dict[str, str]:
    """``OIDC_ROLE_MAP``: "idp-role:clinic_role" pairs, comma separated (or a
    YAML mapping). Empty means the provider already uses the clinic's names."""
    pairs = spec.items() if isinstance(spec, dict) else (
        item.strip().rsplit(":", 1) for item in str(spec or "").split(",") if ":" in item)
    mapping = {}
    for idp_role, role in pairs:
        role = str(role).strip()
        if role not in ROLES:
            raise ValueError(f"OIDC_ROLE_MAP: unknown clinic role {role!r}")
        mapping[str(idp_role).strip()] = role
    return mapping


def _csv(value) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value or "").split(",") if part.strip()]


class KeySet:
    """The provider's signing keys, fetched from its JWKS (or found through
    its discovery document) and cached."""

    def __init__(self, jwks_url: str | None, issuer: str, refresh_seconds: float = JWKS_REFRESH_SECONDS):
        self.jwks_url = jwks_url
        self.issuer = issuer
        self.refresh_seconds = refresh_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._unreachable = False
        self._lock = threading.Lock()

    def key(self, kid: str | None) -> jwt.PyJWK:
        found = self._lookup(kid)
        if found is None:
            self._refresh_if_due()
            found = self._lookup(kid)
        if found is None and self._unreachable:
            # Not the caller's fault: say so, rather than sign them out.
            raise ServiceUnavailable("the identity provider's signing keys could not be fetched; try again shortly")
        if found is None:
            raise Unauthorized("the access token is signed with a key the identity provider does not publish")
        return found

    def _lookup(self, kid):
        if kid is None:
            # A provider with one key may leave kid out.
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    def _may_refresh(self) -> bool:
        return self._fetched_at is None or time.monotonic() - self._fetched_at >= self.refresh_seconds

    def _refresh_if_due(self) -> None:
        # Under the lock: a request arriving while another fetches the keys
        # (a browser's first burst of calls) waits for them instead of being
        # refused because the fetch already counts as the latest one.
        with self._lock:
            if self._may_refresh():
                self._fetch()

    def refresh(self) -> None:
        with self._lock:
            self._fetch()

    def _fetch(self) -> None:
        self._fetched_at = time.monotonic()
        try:
            url = self.jwks_url or self._discover()
            document = httpx.get(url, timeout=FETCH_TIMEOUT_SECONDS)
            document.raise_for_status()
            keys = {}
            for entry in document.json().get("keys", []):
                if entry.get("use", "sig") != "sig":
                    continue
                try:
                    keys[entry.get("kid")] = jwt.PyJWK(entry)
                except jwt.PyJWTError:
                    continue  # a key type this gateway does not use
            self._keys = keys
            self._unreachable = False
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            self._unreachable = True
            # Keep the keys we had: a provider blip must not sign everyone out.
            log.warning("the identity provider's keys could not be fetched: %s", type(exc).__name__)

    def _discover(self) -> str:
        answer = httpx.get(self.issuer.rstrip("/") + "/.well-known/openid-configuration",
                           timeout=FETCH_TIMEOUT_SECONDS)
        answer.raise_for_status()
        self.jwks_url = answer.json()["jwks_uri"]
        return self.jwks_url


@dataclass
class OidcSettings:
    issuer: str
    audience: str
    jwks_url: str | None = None
    roles_claim: str = "roles"
    role_map: dict[str, str] = field(default_factory=dict)
    user_claim: str = "preferred_username"
    refresh_seconds: float = JWKS_REFRESH_SECONDS

    @classmethod
    def from_config(cls, config: dict) -> "OidcSettings | None":
        issuer = str(config.get("OIDC_ISSUER") or "").strip()
        if not issuer:
            return None
        audience = str(config.get("OIDC_AUDIENCE") or "").strip()
        if not audience:
            raise ValueError("OIDC_AUDIENCE is required with OIDC_ISSUER")
        return cls(issuer=issuer, audience=audience,
                   jwks_url=str(config.get("OIDC_JWKS_URL") or "").strip() or None,
                   roles_claim=str(config.get("OIDC_ROLES_CLAIM") or "roles").strip(),
                   role_map=parse_role_map(config.get("OIDC_ROLE_MAP")),
                   user_claim=str(config.get("OIDC_USER_CLAIM") or "preferred_username").strip(),
                   refresh_seconds=float(config.get("OIDC_JWKS_REFRESH_SECONDS", JWKS_REFRESH_SECONDS)))


class OidcVerifier:
    def __init__(self, settings: OidcSettings, keys: KeySet | None = None):
        self.settings = settings
        self.keys = keys or KeySet(settings.jwks_url, settings.issuer, settings.refresh_seconds)

    def user(self, token: str) -> StaffUser:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("the bearer token is not valid") from None
        if header.get("alg") not in ALGORITHMS:
            raise Unauthorized("the access token's signing algorithm is not accepted")
        key = self.keys.key(header.get("kid"))
        try:
            claims = jwt.decode(token, key=key, algorithms=list(ALGORITHMS), audience=self.settings.audience,
                                issuer=self.settings.issuer, leeway=LEEWAY_SECONDS,
                                options={"require": ["exp", "iss", "aud", "sub"]})
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the access token has expired") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("the access token is not meant for this API") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("the access token was not issued by the clinic's identity provider") from None
        except jwt.PyJWTError:
            raise Unauthorized("the access token is not valid") from None
        role = self._role(claims)
        user = claims.get(self.settings.user_claim) or claims["sub"]
        return StaffUser(str(user), role)

    def _role(self, claims: dict) -> str:
        value = claims
        for part in self.settings.roles_claim.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        given = [value] if isinstance(value, str) else list(value or []) if isinstance(value, list) else []
        mapping = self.settings.role_map
        roles = {mapping.get(str(name), str(name) if not mapping else None) for name in given}
        # The most capable role wins when the provider grants several.
        for role in ("admin", "clinician", "billing", "front_desk"):
            if role in roles:
                return role
        raise Forbidden("the access token grants none of the clinic's staff roles")


class SignIn:
    """Static development tokens first (exact match), then OIDC."""

    def __init__(self, tokens: dict[str, StaffUser], oidc: OidcVerifier | None):
        self.tokens = tokens
        self.oidc = oidc

    @classmethod
    def from_config(cls, config: dict) -> "SignIn":
        settings = OidcSettings.from_config(config)
        tokens = parse_tokens(config.get("GATEWAY_TOKENS"))
        if tokens:
            log.warning("static bearer tokens are configured (GATEWAY_TOKENS): for development only")
        if settings is None and not tokens:
            log.warning("no sign-in is configured: set OIDC_ISSUER and OIDC_AUDIENCE (or GATEWAY_TOKENS for "
                        "development); every API request will be refused")
        return cls(tokens, OidcVerifier(settings) if settings else None)

    def authenticate(self, request) -> StaffUser:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("send a bearer token: Authorization: Bearer <token>")
        user = self.tokens.get(token)
        if user is not None:
            return user
        if self.oidc is not None and token.count(".") == 2:
            return self.oidc.user(token)
        raise Unauthorized("the bearer token is not valid")


def cors_origins(config: dict) -> list[str]:
    return _csv(config.get("CORS_ORIGINS"))

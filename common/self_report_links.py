"""Self-report links: the token a patient's link carries, and what intake
keeps of it.

The token is derived from the request id with a secret that intake and
notifications share (``SELF_REPORT.LINK_SECRET``): notifications rebuilds it
when the message goes out, intake keeps only its SHA-256. So the raw token
is in no table, no event, no outbox row and no log line; only the message
itself carries it. Rotating the secret voids every link not yet used."""
from __future__ import annotations

import base64
import hashlib
import hmac
import re

DEFAULT_SECRET = "dev-self-report-link-secret"
DEFAULT_VALID_HOURS = 72
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8010"
DEFAULT_CRISIS_TEXT = ("If you are in crisis or thinking about harming yourself, call or text 988 "
                       "(Suicide & Crisis Lifeline, any hour). In an emergency call 911.")

# 32 bytes of HMAC-SHA256, base64url without padding.
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{43}$")


def token_for(secret: str, request_id: str) -> str:
    digest = hmac.new(secret.encode(), f"self-report:{request_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def well_formed(token) -> bool:
    return isinstance(token, str) and bool(TOKEN_PATTERN.match(token))


def link(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/f/{token}"


def settings(config: dict) -> dict:
    """The SELF_REPORT section with its defaults filled in."""
    values = dict(config.get("SELF_REPORT") or {})
    return {
        "secret": str(values.get("LINK_SECRET") or DEFAULT_SECRET),
        "valid_hours": float(values.get("LINK_VALID_HOURS") or DEFAULT_VALID_HOURS),
        "public_url": str(values.get("PATIENT_PAGES_PUBLIC_URL") or DEFAULT_PUBLIC_URL),
        "crisis_text": str(values.get("CRISIS_RESOURCES") or DEFAULT_CRISIS_TEXT),
    }

"""RabbitMQ's management API, found one way by everything that needs it
(``clinic queues``, the demo, the benchmarks, the test command), and the
throwaway vhosts the demo and the benchmarks run in.

The API's address is ``RABBITMQ_MANAGEMENT_URL`` when set, else the AMQP
host on the plugin's port (15672). Credentials are those of the AMQP URI
unless the management URL carries its own (``http://user:pass@host:15672``).
"""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from urllib.parse import quote, unquote, urlsplit, urlunsplit

MANAGEMENT_PORT = 15672
DEFAULT_AMQP_URI = "amqp://guest:guest@127.0.0.1:5672/"


def _amqp_parts(amqp_uri: str):
    parts = urlsplit(amqp_uri)
    user = unquote(parts.username) if parts.username else "guest"
    password = unquote(parts.password) if parts.password else "guest"
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    return parts, user, password, vhost


def management_url(amqp_uri: str, environ=os.environ) -> str:
    """The management API's base URL, without credentials or a trailing slash."""
    configured = environ.get("RABBITMQ_MANAGEMENT_URL")
    if configured:
        parts = urlsplit(configured.rstrip("/"))
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    host = urlsplit(amqp_uri).hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{MANAGEMENT_PORT}"


def management_auth(amqp_uri: str, environ=os.environ, url: str | None = None) -> tuple[str, str]:
    configured = urlsplit(url or environ.get("RABBITMQ_MANAGEMENT_URL") or "")
    if configured.username:
        return unquote(configured.username), unquote(configured.password or "")
    _, user, password, _ = _amqp_parts(amqp_uri)
    return user, password


def management_url_with_credentials(amqp_uri: str, environ=os.environ) -> str:
    """The form nameko's test plugin takes (``--rabbit-ctl-uri``)."""
    parts = urlsplit(management_url(amqp_uri, environ))
    user, password = management_auth(amqp_uri, environ)
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.netloc}"
    return urlunsplit(parts._replace(netloc=netloc))


class ManagementApi:
    """The few calls of the management HTTP API the clinic's tools make."""

    def __init__(self, amqp_uri: str, url: str | None = None, timeout: float = 5.0, environ=os.environ):
        self.amqp_uri = amqp_uri
        self.auth = management_auth(amqp_uri, environ, url)
        if url:
            parts = urlsplit(url.rstrip("/"))
            url = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        self.url = url or management_url(amqp_uri, environ)
        self.timeout = timeout

    def _call(self, method: str, path: str, **kwargs):
        import httpx

        kwargs.setdefault("timeout", self.timeout)
        answer = httpx.request(method, f"{self.url}/api/{path}", auth=self.auth, **kwargs)
        answer.raise_for_status()
        return answer

    def reachable(self) -> bool:
        try:
            self._call("GET", "overview")
            return True
        except Exception:
            return False

    def queues(self, vhost: str | None = None, columns: str = "name,messages_ready,messages_unacknowledged,consumers"):
        vhost = vhost or _amqp_parts(self.amqp_uri)[3]
        return self._call("GET", f"queues/{quote(vhost, safe='')}", params={"columns": columns}).json()

    def create_vhost(self, name: str) -> None:
        user = self.auth[0]
        self._call("PUT", f"vhosts/{quote(name, safe='')}")
        self._call("PUT", f"permissions/{quote(name, safe='')}/{quote(user, safe='')}",
                   json={"configure": ".*", "write": ".*", "read": ".*"})

    def delete_vhost(self, name: str) -> None:
        # A busy broker takes its time closing the vhost's queues and connections.
        self._call("DELETE", f"vhosts/{quote(name, safe='')}", timeout=max(self.timeout, 30))


def amqp_uri_for_vhost(amqp_uri: str, vhost: str) -> str:
    return urlunsplit(urlsplit(amqp_uri)._replace(path="/" + quote(vhost, safe="")))


@contextmanager
def throwaway_vhost(amqp_uri: str, prefix: str, *, url: str | None = None):
    """A new vhost on the broker of ``amqp_uri``, deleted afterwards (with
    every queue in it); yields the AMQP URI that reaches it. Raises when the
    management API cannot make one."""
    api = ManagementApi(amqp_uri, url)
    vhost = f"{prefix}-{uuid.uuid4().hex[:8]}"
    api.create_vhost(vhost)
    try:
        yield amqp_uri_for_vhost(amqp_uri, vhost)
    finally:
        try:
            api.delete_vhost(vhost)
        except Exception:
            pass  # the broker went away: nothing left to clean

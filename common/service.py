"""The base every clinic service class inherits: its database, dead letters,
metrics, the outbox relay timer and the /health, /ready, /metrics endpoints."""
from __future__ import annotations

import json
import logging

from kombu import Connection
from nameko.dependency_providers import Config
from nameko.timer import Timer
from nameko.web.handlers import http
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.wrappers import Response

from common.database import Database
from common.deadletters import DeadLetters
from common.observability import OUTBOX_BACKLOG, WorkerObserver

log = logging.getLogger(__name__)


class ConfiguredTimer(Timer):
    """A nameko timer whose interval comes from configuration."""

    def __init__(self, interval, config_key=None, **kwargs):
        self.config_key = config_key
        super().__init__(interval, **kwargs)

    def setup(self):
        if self.config_key and self.container.config.get(self.config_key):
            self.interval = float(self.container.config[self.config_key])
        super().setup()


configured_timer = ConfiguredTimer.decorator


def json_response(status: int, body, content_type: str = "application/json") -> Response:
    return Response(json.dumps(body), status=status, mimetype=content_type)


def broker_reachable(amqp_uri: str, timeout: float = 2.0) -> bool:
    try:
        with Connection(amqp_uri, connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
        return True
    except Exception:
        return False


class ClinicService:
    name: str = ""

    config = Config()
    db = Database()
    dead_letters = DeadLetters()
    observer = WorkerObserver()

    @configured_timer(interval=1, config_key="OUTBOX_RELAY_INTERVAL")
    def relay_outbox(self):
        published = self.db.relay()
        if published:
            log.info("outbox relay published %d event(s)", published)

    @http("GET", "/health")
    def health(self, request):
        return json_response(200, {"status": "ok", "service": self.name})

    @http("GET", "/ready")
    def ready(self, request):
        checks = {"database": "ok", "broker": "ok"}
        try:
            self.db.ping()
        except Exception:
            checks["database"] = "unreachable"
        if not broker_reachable(self.config["AMQP_URI"]):
            checks["broker"] = "unreachable"
        ready = all(value == "ok" for value in checks.values())
        return json_response(200 if ready else 503,
                             {"status": "ready" if ready else "not_ready", "service": self.name, "checks": checks})

    @http("GET", "/metrics")
    def metrics(self, request):
        try:
            OUTBOX_BACKLOG.labels(self.name).set(self.db.outbox_backlog())
        except Exception:
            pass
        return Response(generate_latest(), status=200, content_type=CONTENT_TYPE_LATEST)

"""The base every clinic service class inherits: its database, dead letters,
metrics, the outbox relay timer and the /health, /ready, /metrics endpoints;
and ObservedService, the metrics part alone, for the gateway."""
from __future__ import annotations

import json
import logging
from datetime import timezone
from typing import Any, Callable

import eventlet
import sqlalchemy as sa

from kombu import Connection
from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from nameko.timer import Timer
from nameko.web.handlers import http
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from werkzeug.wrappers import Response

from common.config import section
from common.database import Database
from common.deadletter_operations import dead_letter_queue_depth
from common.deadletter_post import DeadLetters
from common.events import utcnow
from common.observability import (
    DEAD_LETTER_QUEUE_DEPTH, OUTBOX_BACKLOG, OUTBOX_OLDEST_PENDING, WorkerObserver,
)
from common.outbox import outbox

# A probe must answer within the orchestrator's health-check timeout even
# when a server blackholes packets instead of refusing the connection.
PROBE_TIMEOUT_SECONDS = 2.0

log = logging.getLogger(__name__)


class ConfigSection(DependencyProvider):
    """A service's configuration section turned into its rules object once,
    when the container is set up: a bad value stops the service at start
    instead of failing every call, and no call reads the configuration again.

    ``rules = ConfigSection("SESSIONS", domain.Rules.from_config)`` gives each
    worker ``self.rules``, built by ``from_config`` from the section's dict
    (empty when the file has no such section)."""

    def __init__(self, name: str, build: Callable[[dict], Any] = dict, **kwargs):
        self.section_name = name
        self.build = build
        super().__init__(**kwargs)

    def setup(self):
        try:
            self.value = self.build(section(self.container.config, self.section_name))
        except (TypeError, ValueError, KeyError) as exc:
            # The builder's own message rarely says where the value was.
            raise ValueError(f"the {self.section_name} section of the configuration cannot be used: {exc}") from exc

    def get_dependency(self, worker_ctx):
        return self.value


class ConfiguredTimer(Timer):
    """A nameko timer whose interval (seconds) comes from configuration:
    ``config_key`` at the top level, or in the service's ``section``."""

    def __init__(self, interval, config_key=None, section=None, **kwargs):
        self.config_key = config_key
        self.section_name = section
        super().__init__(interval, **kwargs)

    def setup(self):
        values = section(self.container.config, self.section_name) if self.section_name else self.container.config
        if self.config_key and values.get(self.config_key):
            self.interval = float(values[self.config_key])
        super().setup()


configured_timer = ConfiguredTimer.decorator


def json_response(status: int, body, content_type: str = "application/json") -> Response:
    return Response(json.dumps(body), status=status, mimetype=content_type)


PROBLEM_JSON = "application/problem+json"


def problem_response(status: int, title: str, detail: str, code: str, headers: dict | None = None,
                     **extra) -> Response:
    """An RFC 9457 problem answer, the one shape of every HTTP error the
    clinic gives (the gateway's and a service's own routes alike)."""
    response = json_response(status, {"type": f"https://clinic.invalid/problems/{code}", "title": title,
                                      "status": status, "detail": detail, "code": code, **extra},
                             content_type=PROBLEM_JSON)
    response.headers.update(headers or {})
    return response


def broker_reachable(amqp_uri: str, timeout: float = 2.0) -> bool:
    try:
        with Connection(amqp_uri, connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=1, interval_start=0.2, timeout=timeout)
        return True
    except Exception:
        return False


class ObservedService:
    """What every process serves besides its own work, the gateway included:
    counts, latency and a log line per entrypoint, and ``GET /metrics``."""

    config = Config()
    observer = WorkerObserver()

    @http("GET", "/metrics")
    def metrics(self, request):
        self.refresh_gauges()
        DEAD_LETTER_QUEUE_DEPTH.set(dead_letter_queue_depth(self.config["AMQP_URI"], timeout=PROBE_TIMEOUT_SECONDS))
        return Response(generate_latest(), status=200, content_type=CONTENT_TYPE_LATEST)

    def refresh_gauges(self) -> None:
        """Set the gauges read at scrape time (a subclass adds its own)."""


class ClinicService(ObservedService):
    name: str = ""

    db = Database()
    dead_letters = DeadLetters()

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
        """Ready to take traffic: its database and the broker answer."""
        checks = {"database": "ok", "broker": "ok"}
        try:
            with eventlet.Timeout(PROBE_TIMEOUT_SECONDS):
                self.db.ping()
        except (Exception, eventlet.Timeout):
            checks["database"] = "unreachable"
        if not broker_reachable(self.config["AMQP_URI"], timeout=PROBE_TIMEOUT_SECONDS):
            checks["broker"] = "unreachable"
        ready = all(value == "ok" for value in checks.values())
        return json_response(200 if ready else 503,
                             {"status": "ready" if ready else "not_ready", "service": self.name, "checks": checks})

    def refresh_gauges(self) -> None:
        # A gauge that cannot be read keeps its last value rather than
        # failing the scrape: the counters still matter.
        try:
            with eventlet.Timeout(PROBE_TIMEOUT_SECONDS):
                pending, oldest = self._outbox_state()
            OUTBOX_BACKLOG.labels(self.name).set(pending)
            OUTBOX_OLDEST_PENDING.labels(self.name).set(oldest)
        except (Exception, eventlet.Timeout):
            log.warning("metrics: outbox backlog unavailable")

    def _outbox_state(self) -> tuple[int, float]:
        self.db.flush_sent_marks()  # published ones are not backlog
        with self.db.read() as session:
            pending, oldest = session.execute(
                sa.select(sa.func.count(), sa.func.min(outbox.c.created_at)).where(outbox.c.sent_at.is_(None))
            ).one()
        return pending, outbox_age_seconds(oldest)


def outbox_age_seconds(oldest) -> float:
    if oldest is None:
        return 0.0
    if oldest.tzinfo is None:  # SQLite hands datetimes back naive (they are UTC)
        oldest = oldest.replace(tzinfo=timezone.utc)
    return max(0.0, (utcnow() - oldest).total_seconds())

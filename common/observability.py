"""Metrics and structured logs, shared by every service process.

Services count their own clinic outcomes through the helpers at the bottom
(``record_notification``); everything else (entrypoint counts and latency,
dead letters, outbox backlog) is measured by the plumbing.
"""
from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid

from nameko.extensions import DependencyProvider
from nameko.timer import Timer
from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics

# The *_created series double what a scrape returns and no dashboard uses them.
disable_created_metrics()

ENTRYPOINT_CALLS = Counter(
    "clinic_entrypoint_calls_total", "Entrypoint invocations",
    ["service", "entrypoint", "kind", "outcome"],
)
ENTRYPOINT_LATENCY = Histogram(
    "clinic_entrypoint_duration_seconds", "Entrypoint latency",
    ["service", "entrypoint", "kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
OUTBOX_BACKLOG = Gauge("clinic_outbox_backlog", "Outbox rows not yet published", ["service"])
OUTBOX_OLDEST_PENDING = Gauge(
    "clinic_outbox_oldest_pending_seconds",
    "Age of the oldest unpublished outbox row (0 when none): a relay that is stuck shows here first",
    ["service"],
)
DEAD_LETTERS = Counter(
    "clinic_dead_letters_total", "Messages this process sent to the dead-letter queue",
    ["service", "handler"],
)
DEAD_LETTER_QUEUE_DEPTH = Gauge(
    "clinic_dead_letter_queue_depth",
    "Messages waiting in the shared dead-letter queue (-1 when the broker could not be asked)",
)
NOTIFICATIONS = Counter(
    "clinic_notifications_total", "Notification delivery attempts by outcome",
    ["service", "channel", "kind", "outcome"],
)

NOTIFICATION_OUTCOMES = ("sent", "failed", "retrying", "dead", "suppressed")

# Greenthread-local under eventlet's monkey patching: the worker a log line
# belongs to.
_current = threading.local()

# Entrypoints that run every second or answer probes (the gateway's
# services_health is /api/v1/health): their completion is logged at DEBUG so
# they do not drown the lines an operator looks for.
_QUIET_ENTRYPOINTS = {"health", "ready", "metrics", "services_health"}

log = logging.getLogger("clinic.entrypoint")


def entrypoint_kind(entrypoint) -> str:
    """``rpc``, ``event``, ``http`` or ``timer``: the label operators filter on."""
    if isinstance(entrypoint, Timer):
        return "timer"
    name = type(entrypoint).__name__.lower()
    if "event" in name:
        return "event"
    if "http" in name:
        return "http"
    if "rpc" in name:
        return "rpc"
    return name


class ExpectedErrorFilter(logging.Filter):
    """nameko logs every expected rejection (a ClinicError: bad input, an
    illegal move) with a traceback and the error's text, which may quote the
    input. The observer's own line already says "rejected" with the error
    type, so those records are dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("(expected) error handling worker")


_expected_error_filter = ExpectedErrorFilter()


class WorkerObserver(DependencyProvider):
    """Times and counts every entrypoint, tags log lines with the worker and
    logs one line per finished entrypoint with its duration and outcome."""

    def setup(self):
        logger = logging.getLogger("nameko.containers")
        if _expected_error_filter not in logger.filters:
            logger.addFilter(_expected_error_filter)

    def worker_setup(self, worker_ctx):
        # A worker started without a correlation id (a plain RPC call, a
        # timer) starts a chain of its own; the unit of work and outgoing
        # RPC calls carry this one on.
        worker_ctx.data.setdefault("correlation_id", str(uuid.uuid4()))
        _current.worker = {
            "service": worker_ctx.service_name,
            "entrypoint": worker_ctx.entrypoint.method_name,
            # The context itself, not a copy: an event handler adopts its
            # event's correlation id after setup, and lines logged later
            # must show that one.
            "context": worker_ctx.data,
            "started": time.monotonic(),
        }

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        worker = getattr(_current, "worker", None) or {}
        duration = time.monotonic() - worker.get("started", time.monotonic())
        kind = entrypoint_kind(worker_ctx.entrypoint)
        method = worker_ctx.entrypoint.method_name
        labels = (worker_ctx.service_name, method, kind)
        outcome = outcome_of(worker_ctx.entrypoint, result, exc_info)
        ENTRYPOINT_CALLS.labels(*labels, outcome).inc()
        ENTRYPOINT_LATENCY.labels(*labels).observe(duration)
        quiet = kind == "timer" or method in _QUIET_ENTRYPOINTS
        level = logging.ERROR if outcome == "error" else logging.DEBUG if quiet else logging.INFO
        # The error type only: its message may quote the input.
        error = type(exc_info[1]).__name__ if exc_info is not None else None
        log.log(level, "%s %s finished: %s", kind, method, outcome,
                extra={"duration_ms": round(duration * 1000, 1), "kind": kind, "outcome": outcome,
                       **({"error": error} if error else {})})

    def worker_teardown(self, worker_ctx):
        _current.worker = None


def outcome_of(entrypoint, result, exc_info) -> str:
    """``ok``, ``rejected`` (an expected refusal: bad input, an illegal move,
    an HTTP 4xx) or ``error`` (a failure: an unexpected exception, an HTTP 5xx)."""
    if exc_info is not None:
        if getattr(exc_info[1], "http_status", 0) >= 500:
            return "error"  # expected, yet a failure: the database was unavailable
        return "rejected" if isinstance(exc_info[1], entrypoint.expected_exceptions or ()) else "error"
    # The gateway answers every failure itself, as problem+json: its status says which.
    status = getattr(result, "status_code", None)
    if isinstance(status, int):
        return "error" if status >= 500 else "rejected" if status >= 400 else "ok"
    return "ok"


def current_worker() -> dict:
    """service, entrypoint and correlation_id of the worker running now."""
    worker = getattr(_current, "worker", None)
    if not worker:
        return {}
    fields = {"service": worker["service"], "entrypoint": worker["entrypoint"]}
    correlation_id = worker["context"].get("correlation_id")
    if correlation_id:
        fields["correlation_id"] = correlation_id
    return fields


# SQLAlchemy quotes the bound values of a failed statement in its message
# ("[parameters: {...}]"): those are patient data and never reach a log.
_SQL_PARAMETERS = re.compile(r"\[parameters: .*?\](?=\n|$)", re.DOTALL)
# Structured fields a log call may add with ``extra=``.
_EXTRA_FIELDS = ("duration_ms", "kind", "outcome", "error", "event_id", "event_type", "handler", "attempts")


def redact(text: str) -> str:
    return _SQL_PARAMETERS.sub("[parameters: redacted]", text)


class JsonFormatter(logging.Formatter):
    """One JSON object a line, with the worker's service, entrypoint and
    correlation id. Messages are the code's own words, never payloads."""

    def __init__(self, *args, service: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if self.service:
            line["service"] = self.service
        line.update(current_worker())
        for key in _EXTRA_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, default=str)


logging.Formatter.converter = time.gmtime


# ------------------------------------------------------------ clinic outcomes

def record_notification(channel: str, kind: str, outcome: str) -> None:
    """Count one delivery attempt, e.g. ``record_notification("sms",
    "appointment_reminder", "sent")``. ``outcome`` is one of
    NOTIFICATION_OUTCOMES. Call it after the attempt's outcome is known,
    from inside the worker (the service label comes from it)."""
    if outcome not in NOTIFICATION_OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(NOTIFICATION_OUTCOMES)}")
    service = current_worker().get("service", "notifications")
    NOTIFICATIONS.labels(service, channel, kind, outcome).inc()

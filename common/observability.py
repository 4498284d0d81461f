"""Metrics and structured logs, shared by every service process."""
from __future__ import annotations

import json
import logging
import threading
import time

from nameko.extensions import DependencyProvider
from prometheus_client import Counter, Gauge, Histogram

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

# Greenthread-local under eventlet's monkey patching: the worker a log line
# belongs to.
_current = threading.local()

# Keys a log record may carry from the worker; never arguments or payloads,
# which may hold patient data.
_WORKER_FIELDS = ("service", "entrypoint", "correlation_id")


class WorkerObserver(DependencyProvider):
    """Times and counts every entrypoint and tags log lines with the worker."""

    def worker_setup(self, worker_ctx):
        _current.worker = {
            "service": worker_ctx.service_name,
            "entrypoint": worker_ctx.entrypoint.method_name,
            "correlation_id": worker_ctx.data.get("correlation_id"),
            "started": time.monotonic(),
        }

    def worker_result(self, worker_ctx, result=None, exc_info=None):
        worker = getattr(_current, "worker", None) or {}
        started = worker.get("started", time.monotonic())
        kind = type(worker_ctx.entrypoint).__name__.lower()
        labels = (worker_ctx.service_name, worker_ctx.entrypoint.method_name, kind)
        outcome = "ok"
        if exc_info is not None:
            expected = worker_ctx.entrypoint.expected_exceptions
            outcome = "rejected" if isinstance(exc_info[1], expected or ()) else "error"
        ENTRYPOINT_CALLS.labels(*labels, outcome).inc()
        ENTRYPOINT_LATENCY.labels(*labels).observe(time.monotonic() - started)

    def worker_teardown(self, worker_ctx):
        _current.worker = None


class JsonFormatter(logging.Formatter):
    """One JSON object a line, with the worker's service, entrypoint and
    correlation id. Messages are the code's own words, never payloads."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        worker = getattr(_current, "worker", None)
        if worker:
            line.update({key: worker[key] for key in _WORKER_FIELDS if worker.get(key)})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line)


logging.Formatter.converter = time.gmtime

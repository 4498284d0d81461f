"""Log lines and metrics produced by the shared observer, without a broker."""
import json
import logging
from types import SimpleNamespace

import pytest
from nameko.events import EventHandler
from nameko.rpc import Rpc
from nameko.timer import Timer
from nameko.web.handlers import HttpRequestHandler

from common import observability
from common.errors import Conflict, ServiceUnavailable
from common.observability import JsonFormatter, WorkerObserver, entrypoint_kind, record_notification, redact


def record(message, *args, exc_info=None, **extra):
    rec = logging.LogRecord("clinic.test", logging.INFO, __file__, 1, message, args, exc_info)
    for key, value in extra.items():
        setattr(rec, key, value)
    return rec


ENTRYPOINTS = {
    Rpc: lambda: Rpc(expected_exceptions=(Conflict,)),
    Timer: lambda: Timer(interval=1),
    HttpRequestHandler: lambda: HttpRequestHandler("GET", "/ready"),
}


def worker_ctx(method="register_patient", entrypoint_cls=Rpc, data=None):
    entrypoint = ENTRYPOINTS[entrypoint_cls]()
    entrypoint.method_name = method
    return SimpleNamespace(service_name="intake", entrypoint=entrypoint, data={} if data is None else data)


@pytest.fixture
def observer():
    yield WorkerObserver()
    observability._current.worker = None


def test_a_line_outside_a_worker(observer):
    line = json.loads(JsonFormatter(service="billing").format(record("relay published %d event(s)", 3)))
    assert line["message"] == "relay published 3 event(s)"
    assert (line["service"], line["level"], line["logger"]) == ("billing", "INFO", "clinic.test")
    assert line["ts"].endswith("Z") and "entrypoint" not in line


def test_a_line_inside_a_worker_carries_its_ids_and_a_late_correlation_id(observer):
    ctx = worker_ctx()
    observer.worker_setup(ctx)
    started = ctx.data["correlation_id"]
    line = json.loads(JsonFormatter().format(record("checking")))
    assert (line["service"], line["entrypoint"], line["correlation_id"]) == ("intake", "register_patient", started)
    # An event handler adopts its event's correlation id after setup.
    ctx.data["correlation_id"] = "chain-1"
    assert json.loads(JsonFormatter().format(record("applied")))["correlation_id"] == "chain-1"


def test_an_incoming_correlation_id_is_kept(observer):
    ctx = worker_ctx(data={"correlation_id": "from-gateway"})
    observer.worker_setup(ctx)
    assert ctx.data["correlation_id"] == "from-gateway"


@pytest.mark.parametrize("exc, outcome, level", [
    (None, "ok", "INFO"),
    (Conflict("already approved"), "rejected", "INFO"),
    (RuntimeError("boom"), "error", "ERROR"),
])
def test_each_finished_entrypoint_is_counted_timed_and_logged(observer, caplog, exc, outcome, level):
    ctx = worker_ctx(method=f"approve_{outcome}")
    before = observability.ENTRYPOINT_CALLS.labels("intake", ctx.entrypoint.method_name, "rpc", outcome)._value.get()
    observer.worker_setup(ctx)
    with caplog.at_level(logging.DEBUG, logger="clinic.entrypoint"):
        observer.worker_result(ctx, None, (type(exc), exc, None) if exc else None)
    after = observability.ENTRYPOINT_CALLS.labels("intake", ctx.entrypoint.method_name, "rpc", outcome)._value.get()
    assert after == before + 1
    [logged] = caplog.records
    line = json.loads(JsonFormatter().format(logged))
    assert (line["level"], line["outcome"], line["kind"]) == (level, outcome, "rpc")
    assert line["duration_ms"] >= 0 and line["entrypoint"] == ctx.entrypoint.method_name
    if exc:
        assert line["error"] == type(exc).__name__
        assert str(exc) not in line["message"]  # the message may quote input


def test_timers_and_probes_log_at_debug(observer, caplog):
    for method in ("relay_outbox", "ready"):
        ctx = worker_ctx(method=method, entrypoint_cls=Timer if method == "relay_outbox" else HttpRequestHandler)
        observer.worker_setup(ctx)
        with caplog.at_level(logging.DEBUG, logger="clinic.entrypoint"):
            observer.worker_result(ctx)
    assert [r.levelname for r in caplog.records] == ["DEBUG", "DEBUG"]


def test_entrypoint_kinds():
    assert entrypoint_kind(Timer(interval=1)) == "timer"
    assert entrypoint_kind(Rpc()) == "rpc"
    assert entrypoint_kind(EventHandler("intake", "patient.registered")) == "event"
    assert entrypoint_kind(HttpRequestHandler("GET", "/ready")) == "http"


def test_sql_parameters_never_reach_a_log():
    text = ("(psycopg2.errors.UniqueViolation) duplicate key\n[SQL: INSERT INTO patients ...]\n"
            "[parameters: {'given_name': 'Ana', 'phone': '+14155550123'}]\n(Background on this error at: x)")
    cleaned = redact(text)
    assert "Ana" not in cleaned and "+1415" not in cleaned
    assert "[parameters: redacted]" in cleaned and "[SQL: INSERT INTO patients ...]" in cleaned
    try:
        raise ValueError(text)
    except ValueError:
        import sys

        line = JsonFormatter().format(record("failed", exc_info=sys.exc_info()))
    assert "Ana" not in line and "redacted" in line


def test_notifications_are_counted_by_channel_kind_and_outcome(observer):
    counter = observability.NOTIFICATIONS.labels("notifications", "sms", "appointment_reminder", "sent")
    before = counter._value.get()
    record_notification("sms", "appointment_reminder", "sent")
    assert counter._value.get() == before + 1
    with pytest.raises(ValueError):
        record_notification("sms", "appointment_reminder", "delivered-ish")


def test_nameko_expected_error_lines_are_dropped_for_the_observer_line():
    from common.observability import ExpectedErrorFilter

    keep = ExpectedErrorFilter().filter
    assert not keep(record("(expected) error handling worker %s: %s", "ctx", "email: bad"))
    assert keep(record("error handling worker %s: %s", "ctx", "boom"))  # unexpected ones stay


@pytest.mark.parametrize("result, exc, outcome", [
    ({"patient_id": "p-1"}, None, "ok"),
    (SimpleNamespace(status_code=201), None, "ok"),
    (SimpleNamespace(status_code=404), None, "rejected"),
    (SimpleNamespace(status_code=422), None, "rejected"),
    (SimpleNamespace(status_code=503), None, "error"),
    (None, Conflict("no"), "rejected"),
    (None, ServiceUnavailable("the database is unavailable"), "error"),
    (None, KeyError("x"), "error"),
])
def test_outcomes(result, exc, outcome):
    from common.observability import outcome_of

    entrypoint = ENTRYPOINTS[Rpc]()
    assert outcome_of(entrypoint, result, (type(exc), exc, None) if exc else None) == outcome

"""The benchmark suite: each of the clinic's figures beside the floor the
framework and the broker set for it, measured interleaved in the same run
(value, floor, value, floor …) and reported as medians of the rounds.

    bench/run [--rounds 5] [--quick]

Starts, on a throwaway vhost of the local RabbitMQ and throwaway PostgreSQL
databases: intake, sessions, billing and the gateway as ``clinic run`` starts them
(one process each), a nameko echo RPC service, a nameko ``@http`` floor
service and a bare kombu replier (``bench/floors.py``). Prints one table:
figure, value, floor, ratio, target, met. Everything is stopped and dropped
afterwards. Nothing here is asserted by the tests.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import sqlalchemy as sa  # noqa: E402
from kombu import Connection  # noqa: E402
from nameko.standalone.rpc import ClusterRpcProxy  # noqa: E402
from sqlalchemy.orm import sessionmaker  # noqa: E402

import floors  # noqa: E402
from billing_event_burst import completed_session  # noqa: E402
from common.config import driver_url  # noqa: E402
from common.engines import make_engine  # noqa: E402
from common.events import envelope  # noqa: E402
from common.migrations import upgrade  # noqa: E402
from common import outbox  # noqa: E402
from common.rabbitmq import DEFAULT_AMQP_URI, throwaway_vhost  # noqa: E402
from tests.support.intake import PATIENT  # noqa: E402
from tests.support.net import free_port  # noqa: E402
from tests.support.sessions import (  # noqa: E402
    CHECKLIST, IV_PLAN, approval_data, clinic_monday, clinic_time, iso, move_to_today,
)

POSTGRES = driver_url(os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
TOKEN = "bench-front-desk"


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


# ------------------------------------------------------------- set-up


class Bench:
    def __init__(self, amqp_uri: str):
        self.amqp_uri = amqp_uri
        self.admin = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
        self.databases: list[str] = []
        self.processes: list[subprocess.Popen] = []
        self.logs = Path(tempfile.mkdtemp(prefix="clinic-bench-"))

    def database(self, service: str | None) -> str:
        """A new database, with ``service``'s tables (none without one)."""
        name = f"clinic_bench_{service or 'floor'}_{uuid.uuid4().hex[:8]}"
        with self.admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        self.databases.append(name)
        url = POSTGRES.rsplit("/", 1)[0] + "/" + name
        if service:
            upgrade(service, url)
        return url

    def start(self, name: str, command: list[str], env: dict) -> None:
        env = {**os.environ, "AMQP_URI": self.amqp_uri, "LOG_LEVEL": "WARNING", "PYTHONWARNINGS": "ignore",
               "CLINIC_SKIP_MIGRATE": "1", "PYTHONPATH": f"{ROOT}:{ROOT / 'bench'}", **env}
        log = open(self.logs / f"{name}.log", "w")
        self.processes.append(subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))

    def clinic(self, service: str, port: int, **env) -> None:
        self.start(service, [sys.executable, "-m", "cli", "run", service],
                   {"WEB_SERVER_ADDRESS": f"127.0.0.1:{port}", **env})

    def nameko(self, name: str, target: str, port: int, **env) -> None:
        self.start(name, [sys.executable, "-m", "nameko", "run", "--config", str(ROOT / "config.yaml"), target],
                   {"WEB_SERVER_ADDRESS": f"127.0.0.1:{port}", **env})

    def close(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        with self.admin.connect() as connection:
            for name in self.databases:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


def wait_until(check, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except Exception:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not become ready")
        time.sleep(0.2)


def http_status(port: int, method: str, path: str, body=None, headers=None) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        return connection.getresponse().status
    finally:
        connection.close()


# ------------------------------------------------------------- load


def http_load(port: int, method: str, paths, count: int, concurrency: int, body=None, headers=None) -> dict:
    """``count`` requests from ``concurrency`` keep-alive connections:
    requests/s and latency percentiles in ms."""
    latencies: list[float] = []
    failures: list[int] = []
    next_index = iter(range(count))
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {TOKEN}", **(headers or {})}
    if body is not None:
        headers["Content-Type"] = "application/json"

    def worker():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                index = next(next_index, None)
            if index is None:
                break
            path = paths(index) if callable(paths) else paths
            payload = body(index) if callable(body) else body
            started = time.perf_counter()
            connection.request(method, path, body=payload, headers=headers)
            answer = connection.getresponse()
            answer.read()
            latencies.append(time.perf_counter() - started)
            if answer.status >= 300:
                failures.append(answer.status)
            if answer.getheader("Connection", "").lower() == "close":
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if failures:
        raise RuntimeError(f"{len(failures)} of {count} requests failed, e.g. HTTP {failures[0]}")
    ms = [1000 * value for value in latencies]
    return {"rps": count / elapsed, "p50": statistics.median(ms), "p95": percentile(ms, 0.95)}


def call_latency(call, count: int) -> float:
    """Median ms of ``count`` sequential calls."""
    ms = []
    for index in range(count):
        started = time.perf_counter()
        call(index)
        ms.append(1000 * (time.perf_counter() - started))
    return statistics.median(ms)


# ------------------------------------------------------------- figures


def number(value: float) -> str:
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3g}"


class Figures:
    def __init__(self):
        self.rows: dict[str, dict] = {}

    def add(self, figure: str, value: float, floor: float, unit: str, target: str | None = None,
            lower_is_better: bool = True) -> None:
        row = self.rows.setdefault(figure, {"values": [], "floors": [], "ratios": [], "unit": unit,
                                            "target": target, "lower": lower_is_better})
        row["values"].append(value)
        row["floors"].append(floor)
        row["ratios"].append(value / floor if floor else float("nan"))

    def table(self) -> str:
        lines = ["| figure | value | floor | ratio | target | met? |", "|---|---|---|---|---|---|"]
        for figure, row in self.rows.items():
            ratio = statistics.median(row["ratios"])
            target = row["target"]
            if target is None:
                met = "–"
                target = "–"
            else:
                bound = float(target[1:-1])
                met = "yes" if (ratio <= bound if target.startswith("≤") else ratio >= bound) else "no"
            value, floor = statistics.median(row["values"]), statistics.median(row["floors"])
            lines.append(f"| {figure} | {number(value)} {row['unit']} | {number(floor)} {row['unit']} | {ratio:.2f}× | "
                         f"{target} | {met} |")
        return "\n".join(lines)


def measure(amqp_uri: str, rounds: int, scale: float, only: str | None = None) -> Figures:
    bench = Bench(amqp_uri)
    figures = Figures()
    try:
        intake_url = bench.database("intake")
        billing_url = bench.database("billing")
        sessions_url = bench.database("sessions")
        ports = {name: free_port() for name in ("intake", "sessions", "billing", "gateway", "echo", "audited_echo",
                                          "http")}
        bench.start("kombu-echo", [sys.executable, str(ROOT / "bench" / "floors.py"), "kombu-echo", amqp_uri], {})
        bench.nameko("echo", "floors:EchoService", ports["echo"])
        bench.nameko("audited-echo", "floors:AuditedEchoService", ports["audited_echo"],
                     BENCH_AUDIT_DATABASE_URL=bench.database(None).replace("+psycopg2", ""))
        bench.nameko("http", "floors:HttpFloor", ports["http"])
        bench.clinic("intake", ports["intake"], INTAKE_DATABASE_URL=intake_url)
        bench.clinic("sessions", ports["sessions"], SESSIONS_DATABASE_URL=sessions_url)
        bench.clinic("billing", ports["billing"], BILLING_DATABASE_URL=billing_url)
        bench.clinic("gateway", ports["gateway"], GATEWAY_TOKENS=f"{TOKEN}:front_desk:bench",
                     INTAKE_HEALTH_URL=f"http://127.0.0.1:{ports['intake']}",
                     BILLING_HEALTH_URL=f"http://127.0.0.1:{ports['billing']}")
        for name in ("intake", "sessions", "billing"):
            wait_until(lambda: http_status(ports[name], "GET", "/ready") == 200, name)
        wait_until(lambda: http_status(ports["http"], "GET", "/echo/x") == 200, "the http floor")
        patient = json.dumps(PATIENT)
        wait_until(lambda: http_status(ports["gateway"], "POST", "/api/v1/patients", patient,
                                       {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
                   == 201, "the gateway")
        time.sleep(1)  # every consumer attached

        with ClusterRpcProxy({"AMQP_URI": amqp_uri}, context_data={"actor": "bench (clinician)"}) as cluster:
            patient_ids = [cluster.intake.register_patient({**PATIENT, "given_name": f"P{n}"})["patient_id"]
                           for n in range(20)]
            kombu = floors.KombuCaller(amqp_uri)
            n_rpc, n_http, n_post = int(200 * scale), int(400 * scale), int(60 * scale)
            n_events = int(400 * scale)
            engine = sa.create_engine(billing_url)
            queue = f"bench.floor-{uuid.uuid4().hex[:6]}"
            event_body = envelope("session.completed", completed_session(0), producer="sessions")
            sessions_publisher = outbox.EventPublisher(amqp_uri, "sessions")
            first = completed_session(0)
            sessions_publisher.publish("session.completed",
                                       envelope("session.completed", first, producer="sessions"))
            wait_until(lambda: cluster.billing.list_charges(first["patient_id"])["total"] > 0, "the first charge")
            invoice_id = cluster.billing.issue_invoice(first["patient_id"])["invoice_id"]
            session_id = started_session(cluster, amqp_uri, sessions_url)
            for _ in range(2):  # warm every path once
                cluster.intake.get_patient(patient_ids[0])
                cluster.billing.get_invoice(invoice_id)
                cluster.sessions.get_session(session_id)
                cluster.bench_echo.echo("x")
                cluster.bench_audited_echo.echo("x")
                kombu.call("x")
            for round_number in range(rounds):
                print(f"  round {round_number + 1}/{rounds}", file=sys.stderr)
                if only == "billing":
                    billing_round(engine, sessions_publisher, amqp_uri, queue, event_body, n_events, figures)
                    continue
                # RPC reads
                read = call_latency(lambda i: cluster.intake.get_patient(patient_ids[i % 20]), n_rpc)
                echo = call_latency(lambda i: cluster.bench_echo.echo(patient_ids[i % 20]), n_rpc)
                bare = call_latency(lambda i: kombu.call(patient_ids[i % 20]), n_rpc)
                figures.add("RPC `intake.get_patient`, median", read, echo, "ms", "≤1.5×")
                invoice = call_latency(lambda i: cluster.billing.get_invoice(invoice_id), n_rpc)
                echo_again = call_latency(lambda i: cluster.bench_echo.echo(invoice_id), n_rpc)
                figures.add("RPC `billing.get_invoice`, median", invoice, echo_again, "ms", "≤1.5×")
                session = call_latency(lambda i: cluster.sessions.get_session(session_id), n_rpc)
                echo_third = call_latency(lambda i: cluster.bench_echo.echo(session_id), n_rpc)
                figures.add("RPC `sessions.get_session`, median", session, echo_third, "ms", "≤1.5×")
                figures.add("nameko echo RPC vs bare kombu request/reply, median", echo, bare, "ms")
                audited = call_latency(lambda i: cluster.bench_audited_echo.echo(patient_ids[i % 20]), n_rpc)
                figures.add("echo RPC that first writes one row durably vs echo RPC, median", audited, echo, "ms")
                figures.add("RPC `intake.get_patient` vs that durable-row echo, median", read, audited, "ms")
                # Gateway read, concurrency 10
                gateway = http_load(ports["gateway"], "GET", lambda i: f"/api/v1/patients/{patient_ids[i % 20]}",
                                    n_http, 10)
                via_echo = http_load(ports["http"], "GET", lambda i: f"/echo/{patient_ids[i % 20]}", n_http, 10)
                ping = http_load(ports["http"], "GET", "/ping", n_http, 10)
                figures.add("gateway `GET /api/v1/patients/{id}` c10, throughput", gateway["rps"],
                            via_echo["rps"], "req/s", "≥0.6×", lower_is_better=False)
                figures.add("gateway `GET /api/v1/patients/{id}` c10, p95", gateway["p95"], via_echo["p95"], "ms",
                            "≤2×")
                figures.add("http→echo RPC floor c10 vs `@http` ping, throughput", via_echo["rps"], ping["rps"],
                            "req/s", lower_is_better=False)
                # Registration, one at a time
                post = http_load(ports["gateway"], "POST", "/api/v1/patients", n_post, 1,
                                 body=lambda i: json.dumps({**PATIENT, "given_name": f"R{round_number}x{i}"}))
                via_echo_1 = http_load(ports["http"], "GET", lambda i: f"/echo/{i}", n_post, 1)
                figures.add("registration `POST /api/v1/patients` c1, p50", post["p50"], via_echo_1["p50"], "ms",
                            "≤2×")
                billing_round(engine, sessions_publisher, amqp_uri, queue, event_body, n_events, figures)
            kombu.close()
            engine.dispose()
            with Connection(amqp_uri) as connection:
                connection.default_channel.queue_delete(queue)

        if only == "billing":
            return figures
        print("  outbox drain", file=sys.stderr)
        outbox_drain(bench, amqp_uri, figures, int(10000 * max(scale, 0.2)))
        print("  reminder sweep", file=sys.stderr)
        reminder_sweep(bench, figures, int(100000 * max(scale, 0.2)))
    finally:
        bench.close()
    return figures


def started_session(cluster, amqp_uri: str, sessions_url: str) -> str:
    """A treatment session under way (checked in, infusion started), as
    the clinic reaches one: intake's approval, a plan, a booking moved to
    today, check-in and start."""
    approval = approval_data()
    intake_publisher = outbox.EventPublisher(amqp_uri, "intake")
    intake_publisher.publish("intake.approved", envelope("intake.approved", approval, producer="intake"))
    intake_publisher.close()
    sessions = cluster.sessions
    chair = sessions.add_resource({"kind": "chair", "name": "Chair 1"})["resource_id"]
    clinician = sessions.add_resource({"kind": "clinician", "name": "Dr A"})["resource_id"]

    plans = []
    # wait_until retries while the approval is not consumed yet
    wait_until(lambda: plans.append(sessions.create_plan({"patient_id": approval["patient_id"], **IV_PLAN})) or True,
               "the approved patient's plan")
    plan_id = plans[0]["plan_id"]
    appointment = sessions.book_appointment({"plan_id": plan_id, "starts_at": iso(clinic_time(clinic_monday(), 9)),
                                             "chair_id": chair, "clinician_id": clinician})
    engine = sa.create_engine(sessions_url)
    move_to_today(engine, appointment["appointment_id"])
    engine.dispose()
    session_id = sessions.check_in(appointment["appointment_id"], CHECKLIST)["session_id"]
    sessions.start_session(session_id, {"lot_number": "BENCH-1"})
    return session_id


def billing_round(engine, publisher, amqp_uri, queue, event_body, n_events, figures) -> None:
    """Billing from events, one replica, beside bare publishing and consuming."""
    billing_rate = billing_burst(engine, publisher, n_events)
    publish_rate = floors.confirmed_publish(amqp_uri, queue, event_body, n_events)
    consume_rate = floors.consume(amqp_uri, queue, n_events)
    figures.add("billing `session.completed` → charges, 1 replica", billing_rate, publish_rate,
                "events/s", "≥0.4×", lower_is_better=False)
    figures.add("billing events/s vs bare consume", billing_rate, consume_rate, "events/s",
                lower_is_better=False)


def billing_burst(engine, publisher, events: int) -> float:
    def charged():
        with engine.connect() as connection:
            return connection.execute(sa.text("SELECT count(DISTINCT session_id) FROM charges")).scalar_one()

    before = charged()
    bodies = [envelope("session.completed", completed_session(n), producer="sessions") for n in range(events)]
    began = time.perf_counter()
    for body in bodies:
        publisher.publish("session.completed", body)
    deadline = time.monotonic() + 300
    while charged() < before + events:
        if time.monotonic() > deadline:
            raise RuntimeError("billing did not charge the burst in time")
        time.sleep(0.02)
    return events / (time.perf_counter() - began)


def outbox_drain(bench: Bench, amqp_uri: str, figures: Figures, backlog: int) -> None:
    """A backlog left by a broker outage, drained by the relay (as the timer
    calls it, batch after batch) against bare confirmed publishing."""
    url = bench.database("intake")
    engine = make_engine(url)
    factory = sessionmaker(engine, expire_on_commit=False)
    publisher = outbox.EventPublisher(amqp_uri, "benchoutbox")
    queue = f"bench.outbox-{uuid.uuid4().hex[:6]}"
    with Connection(amqp_uri) as connection:
        from kombu import Exchange, Queue
        Queue(queue, Exchange("benchoutbox.events", type="topic", durable=True), routing_key="#", durable=True,
              channel=connection.default_channel).declare()
    body = envelope("patient.registered", {"patient_id": str(uuid.uuid4())}, producer="benchoutbox")
    for _ in range(2):
        rows = []
        now = datetime.now(timezone.utc)
        for _ in range(backlog):
            event = {**body, "event_id": str(uuid.uuid4())}
            rows.append({"event_id": event["event_id"], "event_type": event["type"], "body": json.dumps(event),
                         "created_at": now})
        with engine.begin() as connection:
            connection.execute(outbox.outbox.insert(), rows)
        floor_before = floors.confirmed_publish(amqp_uri, queue + ".floor", body, min(backlog, 3000))
        began = time.perf_counter()
        sent = 0
        while True:
            done = outbox.relay_pending(factory, publisher)
            if not done:
                break
            sent += done
        drain_rate = sent / (time.perf_counter() - began)
        floor_after = floors.confirmed_publish(amqp_uri, queue + ".floor", body, min(backlog, 3000))
        figures.add(f"outbox: {backlog} backlog drained by the relay", drain_rate,
                    statistics.median([floor_before, floor_after]), "events/s", "≥0.5×", lower_is_better=False)
    with Connection(amqp_uri) as connection:
        connection.default_channel.queue_delete(queue)
        connection.default_channel.queue_delete(queue + ".floor")
    engine.dispose()


def reminder_sweep(bench: Bench, figures: Figures, stored: int) -> None:
    """The delivery sweep's read with 1 000 and with ``stored`` future
    messages and the same 20 due: its cost should follow the due ones. The
    two sizes are two databases, measured in turns."""
    from services.notifications.models import Message
    from services.notifications.capabilities.delivery import due_messages

    now = datetime.now(timezone.utc)

    def loaded(future: int) -> sa.Engine:
        engine = sa.create_engine(bench.database("notifications"))
        rows = [{"notification_id": str(uuid.uuid4()), "dedupe_key": uuid.uuid4().hex, "kind": "session_reminder",
                 "channel": "email", "recipient": "patient", "context": {}, "urgent": False, "status": "queued",
                 "due_at": now - timedelta(minutes=5) if n < 20 else now + timedelta(days=1 + n % 60), "attempts": 0}
                for n in range(20 + future)]
        with engine.begin() as connection:
            for start in range(0, len(rows), 5000):
                connection.execute(Message.__table__.insert(), rows[start:start + 5000])
        # Freshly inserted rows are not yet all-visible: without a VACUUM an
        # index scan also visits the heap, and the figure measures that.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("VACUUM ANALYZE messages"))
        return engine

    def sweep_ms(engine: sa.Engine) -> float:
        # The database's own execution time (EXPLAIN ANALYZE): the client's
        # share is the same at any size and, on a busy machine, mostly noise.
        statement = str(due_messages(now, 50).compile(engine, compile_kwargs={"literal_binds": True}))
        ms = []
        for _ in range(30):
            with engine.connect() as connection:
                [[plan]] = connection.execute(sa.text("EXPLAIN (ANALYZE, FORMAT JSON) " + statement)).all()
                connection.rollback()
            assert plan[0]["Plan"]["Actual Rows"] == 20
            ms.append(plan[0]["Execution Time"])
        return statistics.median(ms)

    small, large = loaded(1000), loaded(stored)
    for _ in range(5):
        figures.add(f"reminder sweep's read (database time) with {stored} future messages (floor: with 1000)",
                    sweep_ms(large), sweep_ms(small), "ms", "≤1.5×")
    small.dispose()
    large.dispose()


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        total_kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {total_kb / 1024 / 1024:.1f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} cores, {model}{memory}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="smaller batches (a quick look, not a figure)")
    parser.add_argument("--only", choices=["billing"], help="only this figure and its floors")
    args = parser.parse_args()
    rounds = max(1, min(args.rounds, 15))
    scale = 0.25 if args.quick else 1.0
    started = datetime.now(timezone.utc)
    print(f"clinic benchmarks, {started:%Y-%m-%d %H:%M} UTC, {machine()}; "
          f"medians of {rounds} interleaved round(s); PostgreSQL", file=sys.stderr)
    with throwaway_vhost(os.environ.get("AMQP_URI", DEFAULT_AMQP_URI), "bench") as amqp_uri:
        figures = measure(amqp_uri, rounds, scale, args.only)
    print(f"\n{started:%Y-%m-%d %H:%M} UTC, {machine()}, {rounds} rounds\n")
    print(figures.table())


if __name__ == "__main__":
    main()

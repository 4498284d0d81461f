"""Benchmark: how fast billing turns a burst of ``session.completed`` events
into charges, with one replica and with two (separate processes started by
the same ``clinic run billing`` a container runs).

    .venv/bin/python bench/billing_event_burst.py [--events 500] [--replicas 1 2]

Uses a throwaway vhost on the local RabbitMQ and a throwaway PostgreSQL
database per run, publishes a bounded burst on loopback, prints the figures
and cleans up. Nothing here asserts a time.
"""
import argparse
import os
import subprocess
import sys
import time
import uuid
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from common.config import driver_url  # noqa: E402
from common.rabbitmq import DEFAULT_AMQP_URI, throwaway_vhost  # noqa: E402
from common.events import envelope, iso  # noqa: E402
from common.outbox import EventPublisher  # noqa: E402
from common.migrations import upgrade  # noqa: E402

POSTGRES = driver_url("postgresql://postgres@127.0.0.1:5432/postgres")


def free_port():
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def completed_session(number: int) -> dict:
    started = datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc) + timedelta(minutes=number)
    return {"patient_id": str(uuid.uuid4()), "session_id": str(uuid.uuid4()), "appointment_id": str(uuid.uuid4()),
            "plan_id": str(uuid.uuid4()), "route": "iv_infusion", "drug": "ketamine", "dose_mg": 35.0,
            "started_at": iso(started), "ended_at": iso(started + timedelta(minutes=40)), "duration_minutes": 40,
            "date_of_service": "2026-11-20", "clinician_id": "bench", "sequence": 1}


def run(events: int, replicas: int) -> dict:
    with throwaway_vhost(os.environ.get("AMQP_URI", DEFAULT_AMQP_URI), "bench") as amqp_uri:
        return run_in(amqp_uri, events, replicas)


def run_in(amqp_uri: str, events: int, replicas: int) -> dict:
    admin = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    db_name = f"clinic_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{db_name}"'))
    url = POSTGRES.rsplit("/", 1)[0] + "/" + db_name
    upgrade("billing", url)
    engine = sa.create_engine(url)
    processes = []
    try:
        for _ in range(replicas):
            port = free_port()
            env = {**os.environ, "AMQP_URI": amqp_uri, "BILLING_DATABASE_URL": url, "CLINIC_SKIP_MIGRATE": "1",
                   "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}", "LOG_LEVEL": "WARNING", "PYTHONWARNINGS": "ignore"}
            processes.append((subprocess.Popen([sys.executable, "-m", "cli", "run", "billing"], env=env,
                                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), port))
        for _, port in processes:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("billing did not become ready")
                time.sleep(0.2)
        time.sleep(1)  # let every replica's consumers attach
        publisher = EventPublisher(amqp_uri, "sessions")
        bodies = [envelope("session.completed", completed_session(n), producer="sessions") for n in range(events)]
        began = time.monotonic()
        for body in bodies:
            publisher.publish("session.completed", body)
        published = time.monotonic() - began
        charged = 0
        deadline = time.monotonic() + 300
        while charged < events and time.monotonic() < deadline:
            with engine.connect() as connection:
                charged = connection.execute(sa.text(
                    "SELECT count(DISTINCT session_id) FROM charges")).scalar_one()
            time.sleep(0.05)
        elapsed = time.monotonic() - began
        return {"replicas": replicas, "events": events, "charged": charged, "publish_s": published,
                "elapsed_s": elapsed, "per_second": charged / elapsed}
    finally:
        for process, _ in processes:
            process.terminate()
        for process, _ in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
        admin.dispose()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    events = max(1, min(args.events, 5000))
    print(f"billing: a burst of {events} session.completed events → charges (PostgreSQL, {os.cpu_count()} cores)")
    for replicas in args.replicas:
        result = run(events, max(1, min(replicas, 4)))
        print(f"  {result['replicas']} replica(s): {result['charged']}/{result['events']} sessions charged in "
              f"{result['elapsed_s']:.1f} s = {result['per_second']:.0f} events/s "
              f"(publishing took {result['publish_s']:.1f} s)")


if __name__ == "__main__":
    main()

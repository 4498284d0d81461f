"""Benchmark: registering patients through the gateway, and how long until
the resulting event is on the bus.

    .venv/bin/python bench/intake_registration.py [--requests 300] [--concurrency 10] [--sqlite]

Starts intake and the gateway in this process on the local RabbitMQ (a
throwaway vhost) and a throwaway PostgreSQL database (or a SQLite file with
--sqlite), sends a bounded number of requests on loopback, prints the
figures and cleans up. Nothing here asserts a time.
"""
import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
import warnings  # noqa: E402

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from nameko.containers import ServiceContainer  # noqa: E402

warnings.filterwarnings("ignore")
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))

from common.config import driver_url  # noqa: E402
from common.migrations import upgrade  # noqa: E402
from common.rabbitmq import DEFAULT_AMQP_URI, throwaway_vhost  # noqa: E402
from gateway.service import GatewayService  # noqa: E402
from services.intake.service import IntakeService  # noqa: E402
from tests.support.events import EventRecorder  # noqa: E402
from tests.support.intake import PATIENT  # noqa: E402
from tests.support.net import free_port  # noqa: E402

POSTGRES = driver_url("postgresql://postgres@127.0.0.1:5432/postgres")


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--sqlite", action="store_true")
    args = parser.parse_args()
    requests = max(1, min(args.requests, 5000))
    with throwaway_vhost(os.environ.get("AMQP_URI", DEFAULT_AMQP_URI), "bench") as amqp_uri:
        measure(amqp_uri, args, requests)


def measure(amqp_uri, args, requests):
    admin = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    db_name = f"clinic_bench_{uuid.uuid4().hex[:8]}"
    if args.sqlite:
        url = f"sqlite:///{tempfile.mkdtemp()}/intake.sqlite3"
    else:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{db_name}"'))
        url = POSTGRES.rsplit("/", 1)[0] + "/" + db_name
    upgrade("intake", url)

    base = {"AMQP_URI": amqp_uri, "DATABASE_URLS": {"intake": url}, "GATEWAY_TOKENS": "b:front_desk:bench",
            "OUTBOX_RELAY_INTERVAL": 1}
    containers = [ServiceContainer(cls, {**base, "WEB_SERVER_ADDRESS": f"127.0.0.1:{port}"})
                  for cls, port in ((IntakeService, free_port()), (GatewayService, free_port()))]
    for container in containers:
        container.start()
    gateway = f"http://{containers[1].config['WEB_SERVER_ADDRESS']}"
    recorder = EventRecorder(amqp_uri).listen("intake")
    try:
        with httpx.Client(base_url=gateway, headers={"Authorization": "Bearer b"}, timeout=30) as client:
            client.post("/api/v1/patients", json=PATIENT)  # warm up
            recorder.wait_for("patient.registered")
            latencies, sent_at = [], {}

            def register(i):
                started = sent_at[f"bench-{i}"] = time.monotonic()
                answer = client.post("/api/v1/patients", json={**PATIENT, "given_name": f"P{i}"},
                                     headers={"X-Correlation-ID": f"bench-{i}"})
                answer.raise_for_status()
                latencies.append(time.monotonic() - started)

            arrivals = {}

            def watch_the_bus():
                # Runs beside the requests so arrival times are real.
                deadline = time.monotonic() + 120
                while len(arrivals) < requests and time.monotonic() < deadline:
                    recorder.seen.clear()
                    for event in recorder.events("patient.registered"):
                        cid = event["correlation_id"]
                        if cid in sent_at and cid not in arrivals:
                            arrivals[cid] = time.monotonic() - sent_at[cid]
                    eventlet.sleep(0.005)

            watcher = eventlet.spawn(watch_the_bus)
            pool = eventlet.GreenPool(args.concurrency)
            began = time.monotonic()
            for i in range(requests):
                pool.spawn_n(register, i)
            pool.waitall()
            elapsed = time.monotonic() - began
            watcher.wait()
    finally:
        recorder.close()
        for container in containers:
            container.stop()
        if not args.sqlite:
            with admin.connect() as connection:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))

    ms = [1000 * value for value in latencies]
    print(f"intake registration via gateway ({'SQLite' if args.sqlite else 'PostgreSQL'}, "
          f"{requests} requests, concurrency {args.concurrency})")
    print(f"  throughput        {requests / elapsed:8.1f} requests/s")
    print(f"  latency p50       {statistics.median(ms):8.1f} ms")
    print(f"  latency p95       {percentile(ms, 0.95):8.1f} ms")
    print(f"  latency max       {max(ms):8.1f} ms")
    print(f"  events on the bus {len(arrivals)}/{requests}")
    if arrivals:
        # Measured from the request being sent; the bus is polled every 5 ms.
        event_ms = [1000 * value for value in arrivals.values()]
        print(f"  request→event p50 {statistics.median(event_ms):8.1f} ms")
        print(f"  request→event p95 {percentile(event_ms, 0.95):8.1f} ms")


if __name__ == "__main__":
    main()

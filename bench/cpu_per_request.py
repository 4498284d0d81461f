"""Where the CPU of a request goes: milliseconds of CPU each process spends
per request (user + system, from /proc), for a registration, a patient
read through the gateway and the http → echo RPC floor, one request at a
time.

    .venv/bin/python bench/cpu_per_request.py [--requests 300] [--alone]

Starts, as ``bench/run`` does (throwaway vhost and PostgreSQL databases):
intake, sessions, billing, the gateway, the echo RPC service and the
``@http`` floor. ``--alone`` leaves sessions and billing out, so a
registration's ``patient.registered`` has no consumer: the difference is
what the clinic's reaction to a registration costs on the same cores.
On a 2-core machine every process shares the cores with RabbitMQ and
PostgreSQL, so a consumer's CPU shows in the registration's latency even
though nothing waits for it. Linux only. Nothing here is asserted by the
tests.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from suite import TOKEN, Bench, http_load, http_status, wait_until  # noqa: E402  (puts the project on the path)

from common.rabbitmq import DEFAULT_AMQP_URI, throwaway_vhost  # noqa: E402
from tests.support.intake import PATIENT  # noqa: E402
from tests.support.net import free_port  # noqa: E402

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND


def per_request(processes: dict[str, int], run, count: int) -> tuple[dict, dict[str, float]]:
    """``run()``'s figures and each process's CPU ms per request."""
    before = {name: cpu_seconds(pid) for name, pid in processes.items()}
    figures = run()
    return figures, {name: 1000 * (cpu_seconds(pid) - before[name]) / count for name, pid in processes.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--alone", action="store_true", help="no sessions or billing to consume the events")
    args = parser.parse_args()
    n = args.requests
    with throwaway_vhost(os.environ.get("AMQP_URI", DEFAULT_AMQP_URI), "cpu") as amqp_uri:
        bench = Bench(amqp_uri)
        try:
            ports = {name: free_port() for name in ("intake", "sessions", "billing", "gateway", "echo", "http")}
            bench.clinic("intake", ports["intake"], INTAKE_DATABASE_URL=bench.database("intake"))
            consumers = () if args.alone else ("sessions", "billing")
            for name in consumers:
                bench.clinic(name, ports[name], **{f"{name.upper()}_DATABASE_URL": bench.database(name)})
            bench.clinic("gateway", ports["gateway"], GATEWAY_TOKENS=f"{TOKEN}:front_desk:bench",
                         INTAKE_HEALTH_URL=f"http://127.0.0.1:{ports['intake']}")
            bench.nameko("echo", "floors:EchoService", ports["echo"])
            bench.nameko("http", "floors:HttpFloor", ports["http"])
            names = ["intake", *consumers, "gateway", "echo", "http"]
            processes = dict(zip(names, (process.pid for process in bench.processes)))
            for name in ("intake", *consumers):
                wait_until(lambda: http_status(ports[name], "GET", "/ready") == 200, name)
            wait_until(lambda: http_status(ports["http"], "GET", "/echo/x") == 200, "the http floor")
            body = lambda i: json.dumps({**PATIENT, "given_name": f"C{i}"})  # noqa: E731
            headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
            wait_until(lambda: http_status(ports["gateway"], "POST", "/api/v1/patients", body(0), headers) == 201,
                       "the gateway")
            time.sleep(1)  # every consumer attached
            patient_id = json.loads(register(ports["gateway"], headers))["patient_id"]
            runs = {
                "registration `POST /api/v1/patients`": lambda: http_load(
                    ports["gateway"], "POST", "/api/v1/patients", n, 1, body=body),
                "patient read `GET /api/v1/patients/{id}`": lambda: http_load(
                    ports["gateway"], "GET", f"/api/v1/patients/{patient_id}", n, 1),
                "floor: `@http` → echo RPC": lambda: http_load(ports["http"], "GET", lambda i: f"/echo/{i}", n, 1),
            }
            for run in runs.values():  # warm every path
                run()
            print(f"CPU ms per request, {n} requests one at a time"
                  f"{', no consumers of patient.registered' if args.alone else ''}\n")
            print("| request | p50 ms | " + " | ".join(names) + " | all |")
            print("|---|---|" + "---|" * (len(names) + 1))
            for label, run in runs.items():
                figures, cpu = per_request(processes, run, n)
                print(f"| {label} | {figures['p50']:.2f} | " + " | ".join(f"{cpu[name]:.2f}" for name in names)
                      + f" | {sum(cpu.values()):.2f} |")
        finally:
            bench.close()


def register(port: int, headers: dict) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", "/api/v1/patients", body=json.dumps({**PATIENT, "given_name": "Read"}),
                           headers=headers)
        return connection.getresponse().read().decode()
    finally:
        connection.close()


if __name__ == "__main__":
    main()

"""The clinic as its containers run it: one ``clinic run <service>`` process
per service (and the gateway), on a broker and databases the test names."""
from __future__ import annotations

from pathlib import Path

from tests.conftest import STAFF_TOKENS
from tests.support.net import free_port
from tests.support.ops import CLINIC, ClinicProcess


class ClinicProcesses:
    def __init__(self, amqp_uri: str, databases, folder: Path, services, env: dict | None = None):
        folder.mkdir(parents=True, exist_ok=True)
        self.amqp_uri = amqp_uri
        self.processes: dict[str, ClinicProcess] = {}
        common = {"AMQP_URI": amqp_uri, "LOG_FORMAT": "json", "LOG_LEVEL": "INFO",
                  "OUTBOX_RELAY_INTERVAL": "0.5", "GATEWAY_TOKENS": STAFF_TOKENS,
                  # The test databases are migrated when first asked for.
                  "CLINIC_SKIP_MIGRATE": "1", **(env or {})}
        addresses = {name: f"127.0.0.1:{free_port()}" for name in services}
        for name in services:
            process_env = {**common, "WEB_SERVER_ADDRESS": addresses[name]}
            if name != "gateway":  # the gateway has no database
                process_env[f"{name.upper()}_DATABASE_URL"] = databases[name]
            if name == "gateway":
                process_env.update({f"{other.upper()}_HEALTH_URL": f"http://{address}"
                                    for other, address in addresses.items() if other != "gateway"})
            self.processes[name] = ClinicProcess([str(CLINIC), "run", name], process_env, folder / f"{name}.log")

    def __getitem__(self, name: str) -> ClinicProcess:
        return self.processes[name]

    def start(self) -> "ClinicProcesses":
        for process in self.processes.values():  # all at once, then each is waited for
            process.launch()
        for name, process in self.processes.items():
            process.wait_until_up("health" if name == "gateway" else "ready", timeout=120)
        return self

    def pids(self) -> dict[str, int]:
        return {name: process.process.pid for name, process in self.processes.items()}

    def exited(self) -> dict[str, int]:
        """The processes that are no longer running, with their exit codes."""
        return {name: process.process.returncode for name, process in self.processes.items()
                if process.process.poll() is not None}

    def outputs(self) -> str:
        return "\n".join(f"--- {name}\n{process.output()[-4000:]}" for name, process in self.processes.items())

    def stop(self) -> None:
        for process in self.processes.values():
            if process.process is not None:
                process.stop()

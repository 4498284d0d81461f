"""Helpers for the operations tests: the container command as compose
declares it, a service process started with that command, and metrics
scraped the way Prometheus does."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import eventlet
import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from common.config import PROJECT_ROOT

COMPOSE_FILE = PROJECT_ROOT / "docker-compose.yml"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
CLINIC = Path(sys.executable).parent / "clinic"


class _ComposeLoader(yaml.SafeLoader):
    """SafeLoader without the ``${VAR}`` resolver nameko's config loader
    adds to it: compose variables are read as written, not substituted
    from this process's environment."""


def compose() -> dict:
    _ComposeLoader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "!env_var"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return yaml.load(COMPOSE_FILE.read_text(), Loader=_ComposeLoader)


def dockerfile_instruction(name: str) -> list[str]:
    """The JSON (exec) form of a Dockerfile instruction, e.g. ENTRYPOINT."""
    match = re.search(rf"^{name}\s+(\[.*\])\s*$", DOCKERFILE.read_text(), re.MULTILINE)
    if not match:
        raise AssertionError(f"Dockerfile has no exec-form {name}")
    return json.loads(match.group(1))


def container_command(service: str) -> list[str]:
    """What the container of ``service`` runs: the image's entrypoint
    followed by the compose command."""
    entry = compose()["services"][service]
    entrypoint = entry.get("entrypoint") or dockerfile_instruction("ENTRYPOINT")
    return list(entrypoint) + list(entry.get("command") or dockerfile_instruction("CMD"))


def wait_until(predicate, timeout: float = 15.0, interval: float = 0.1, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not met within {timeout}s")
        eventlet.sleep(interval)


def http_status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.HTTPError:
        return None


def scrape(base_url: str) -> dict:
    """``/metrics`` parsed by prometheus_client's own parser:
    {family name: [samples]}."""
    answer = httpx.get(f"{base_url}/metrics", timeout=5)
    assert answer.status_code == 200
    return {family.name: family.samples for family in text_string_to_metric_families(answer.text)}


def sample(families: dict, family: str, name: str | None = None, **labels) -> float | None:
    for s in families.get(family, []):
        if (name is None or s.name == name) and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    return None


class ClinicProcess:
    """``clinic run <service>`` as its own process (the container's
    command), its stdout kept in a file for the log assertions."""

    def __init__(self, command: list[str], env: dict, log_path: Path):
        self.command = command
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.address = env["WEB_SERVER_ADDRESS"]

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def launch(self) -> "ClinicProcess":
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(self.command, env=self.env, cwd=PROJECT_ROOT,
                                        stdout=self._log, stderr=subprocess.STDOUT)
        return self

    def wait_until_up(self, probe: str = "ready", timeout: float = 60.0) -> "ClinicProcess":
        def up():
            if self.process.poll() is not None:
                raise AssertionError(f"{' '.join(self.command)} exited {self.process.returncode}:\n{self.output()}")
            return http_status(f"{self.url}/{probe}") == 200

        wait_until(up, timeout=timeout, interval=0.25, message=f"{' '.join(self.command)} up")
        return self

    def start(self, probe: str = "ready") -> "ClinicProcess":
        return self.launch().wait_until_up(probe)

    def stop(self) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def json_lines(self) -> list[dict]:
        """Every line the process wrote, the runner's own included, parsed;
        fails on a line that is not one JSON object."""
        return json_lines(self.output())


def json_lines(output: str) -> list[dict]:
    parsed = []
    for number, line in enumerate(output.splitlines(), 1):
        try:
            value = json.loads(line)
        except ValueError:
            raise AssertionError(f"line {number} is not JSON: {line!r}") from None
        assert isinstance(value, dict), f"line {number} is not a JSON object: {line!r}"
        parsed.append(value)
    return parsed

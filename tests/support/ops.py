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


_socket = eventlet.patcher.original("socket")
_threading = eventlet.patcher.original("threading")


class ThreadedProxy:
    """A TCP proxy, like tests.support.net.CuttableProxy, that runs in OS
    threads on unpatched sockets, outside eventlet's hub. In front of
    PostgreSQL this matters: libpq opens its sockets behind the hub's back,
    and a proxy socket the hub still watches can share a file descriptor
    number with a new libpq connection ("Second simultaneous read")."""

    def __init__(self, target_host: str, target_port: int):
        from tests.support.net import free_port

        self.target = (target_host, target_port)
        self.port = free_port()
        self.listener = None
        self.connections: list = []
        self.lock = _threading.Lock()

    @property
    def running(self) -> bool:
        return self.listener is not None

    def start(self) -> "ThreadedProxy":
        listener = _socket.socket()
        listener.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(50)
        self.listener = listener
        _threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = _socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            pair = [client, upstream, 2]  # the last pipe to finish closes both
            with self.lock:
                self.connections.append(pair)
            for source, sink in ((client, upstream), (upstream, client)):
                _threading.Thread(target=self._pipe, args=(source, sink, pair), daemon=True).start()

    def _pipe(self, source, sink, pair):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _shutdown(sink)
            _shutdown(source)
            with self.lock:
                pair[2] -= 1
                last = pair[2] == 0
                if last and pair in self.connections:
                    self.connections.remove(pair)
            if last:
                pair[0].close()
                pair[1].close()

    def cut(self) -> None:
        """Refuse new connections and drop every open one."""
        if self.listener is not None:
            _shutdown(self.listener)
            self.listener.close()
            self.listener = None
        with self.lock:
            pairs = list(self.connections)
        for client, upstream, _ in pairs:
            _shutdown(client)
            _shutdown(upstream)

    def restore(self) -> None:
        self.start()


def _shutdown(sock) -> None:
    try:
        sock.shutdown(_socket.SHUT_RDWR)
    except OSError:
        pass

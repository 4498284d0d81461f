"""RabbitMQ nodes of a test's own, for the fault tests that stop, kill or
cluster a broker: the shared broker on 5672 is never touched.

Each node gets its own node name, AMQP and distribution ports on loopback,
and its own data, log and config files under a temporary folder, and an
Erlang cookie of its own (``$HOME/.erlang.cookie`` of a private home that
its ``rabbitmqctl`` uses too). ``RabbitNode.cleanup`` (and
``RabbitCluster.cleanup``) stop whatever is still running, by its process
id, and are meant to run from a fixture's teardown, so a failing test does
not leave a broker behind.
"""
from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.support.net import steady_port

RABBIT_BIN = Path(os.environ.get("RABBITMQ_BIN_DIR", "/usr/lib/rabbitmq/bin"))
# rabbitmqctl opens a distribution port of its own in 35672-35682 (the
# default 25672 + 10000 and up); a node listening there would collide.
CLI_DIST_PORTS = range(35672, 35683)
START_TIMEOUT = 90
STOP_TIMEOUT = 60


def rabbitmq_available() -> bool:
    return (RABBIT_BIN / "rabbitmq-server").exists() and (RABBIT_BIN / "rabbitmqctl").exists()


def node_port(taken: set[int]) -> int:
    port = steady_port(taken | set(CLI_DIST_PORTS))
    taken.add(port)
    return port


class RabbitNode:
    """One ``rabbitmq-server`` process: start, stop (gracefully), kill -9,
    start again on the same data."""

    def __init__(self, base: Path, short_name: str, home: Path, taken_ports: set[int] | None = None):
        taken = taken_ports if taken_ports is not None else set()
        self.short_name = short_name
        self.name = f"{short_name}@localhost"
        self.home = home
        self.dir = base / short_name
        self.amqp_port = node_port(taken)
        self.dist_port = node_port(taken)
        self.process: subprocess.Popen | None = None
        self.starts = 0
        for sub in ("mnesia", "log"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        (self.dir / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.amqp_port}\n"
            # A queue leader that is killed is noticed within seconds.
            "net_ticktime = 10\n"
        )
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq-env.conf").write_text("")  # not /etc/rabbitmq's

    @property
    def amqp_uri(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.amqp_port}/"

    @property
    def pid_file(self) -> Path:
        return self.dir / "rabbitmq.pid"

    def _server_env(self) -> dict:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    # ------------------------------------------------------------- control

    def start(self, timeout: float = START_TIMEOUT) -> "RabbitNode":
        if not self.running:
            self.launch()
            self.wait_until_up(timeout)
        return self

    def launch(self) -> "RabbitNode":
        """Start the server without waiting for it (see ``wait_until_up``)."""
        self.pid_file.unlink(missing_ok=True)
        self.starts += 1
        output = open(self.dir / f"server-{self.starts}.out", "wb")
        self.process = subprocess.Popen(
            [str(RABBIT_BIN / "rabbitmq-server")], env=self._server_env(), cwd=self.dir,
            stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            # Its own process group: cleanup can end the script and the
            # Erlang VM together without reaching anything else.
            start_new_session=True,
        )
        output.close()
        return self

    def wait_until_up(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.server_output()[-3000:]}")
            if self.pid_file.exists() and self._accepts_amqp():
                answer = self.ctl("await_startup", check=False, timeout=max(5.0, deadline - time.monotonic()))
                if answer.returncode == 0:
                    return
            time.sleep(0.25)
        raise RuntimeError(f"{self.name} did not start within {timeout}s:\n{self.server_output()[-3000:]}")

    def _accepts_amqp(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.amqp_port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """A graceful shutdown, as ``systemctl stop`` or ``docker stop`` does."""
        if not self.running:
            return
        self.ctl("stop", str(self.pid_file), check=False, timeout=timeout)
        self._reap(timeout)

    def kill(self) -> None:
        """``kill -9`` of the Erlang VM: no goodbye to clients or peers."""
        if not self.running:
            return
        beam = self.beam_pid()
        if beam is not None:
            try:
                os.kill(beam, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._reap(STOP_TIMEOUT)

    def beam_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def _reap(self, timeout: float) -> None:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill_group()

    def _kill_group(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ctl(self, *args: str, check: bool = True, timeout: float = 60.0,
            tool: str = "rabbitmqctl") -> subprocess.CompletedProcess:
        # Only HOME (for the cookie): the server's RABBITMQ_* variables would
        # make the CLI take the node's own distribution port.
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home), "LANG": "C.UTF-8",
               "ERL_EPMD_ADDRESS": "127.0.0.1"}
        answer = subprocess.run([str(RABBIT_BIN / tool), "-n", self.name, *args], env=env,
                                capture_output=True, text=True, timeout=timeout)
        if check and answer.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} on {self.name} failed: {answer.stderr or answer.stdout}")
        return answer

    def server_output(self) -> str:
        outputs = sorted(self.dir.glob("server-*.out"))
        return outputs[-1].read_text(errors="replace") if outputs else ""

    def cleanup(self) -> None:
        if self.running:
            self.kill()
        self._kill_group()


class RabbitCluster:
    """Nodes of a test's own sharing one Erlang cookie; ``form()`` joins the
    second and later nodes to the first."""

    def __init__(self, base: Path, size: int = 1, prefix: str = "clinic-faults"):
        self.base = Path(base)
        self.home = self.base / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        cookie = self.home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16).upper())
        cookie.chmod(0o400)
        run = secrets.token_hex(3)
        taken: set[int] = set()
        self.nodes = [RabbitNode(self.base, f"{prefix}-{run}-{index + 1}", self.home, taken)
                      for index in range(size)]

    @property
    def first(self) -> RabbitNode:
        return self.nodes[0]

    def start(self) -> "RabbitCluster":
        for node in self.nodes:  # side by side, then each is waited for
            if not node.running:
                node.launch()
        for node in self.nodes:
            node.wait_until_up()
        return self

    def failover_uri(self, first: "RabbitNode | None" = None) -> str:
        """An ``AMQP_URI`` naming every node (kombu's ``;`` list): a client
        connects to the first that answers and moves on when it fails."""
        ordered = sorted(self.nodes, key=lambda node: node is not (first or self.first))
        return ";".join(node.amqp_uri for node in ordered)

    def form(self) -> "RabbitCluster":
        """Start every node and join the others to the first."""
        self.start()
        for node in self.nodes[1:]:
            node.ctl("stop_app")
            node.ctl("join_cluster", self.first.name)
            node.ctl("start_app")
        for node in self.nodes:
            node.ctl("await_startup")
        return self

    def node(self, name: str) -> RabbitNode:
        return next(node for node in self.nodes if node.name == name)

    def running_nodes(self) -> list[RabbitNode]:
        return [node for node in self.nodes if node.running]

    def queue_leader(self, queue: str, vhost: str = "/") -> RabbitNode:
        """The node leading a quorum queue now (asked of any running node)."""
        for asking in self.running_nodes():
            answer = asking.ctl("list_queues", "-p", vhost, "--no-table-headers", "--quiet",
                                "name", "leader", check=False)
            for line in answer.stdout.splitlines():
                parts = re.split(r"\s+", line.strip())
                if len(parts) >= 2 and parts[0] == queue and "@" in parts[1]:
                    return self.node(parts[1])
        raise LookupError(f"no running node names a leader for {queue}")

    def cleanup(self) -> None:
        for node in self.nodes:
            node.cleanup()
        shutil.rmtree(self.base, ignore_errors=True)

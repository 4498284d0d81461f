"""bin/run-tests on a machine whose broker has its management plugin off:
on this machine's own broker the test command turns it on and waits for the
API; a remote broker is only reported. The shared broker's plugin is never
touched: a fake ``rabbitmq-plugins`` stands in for the real one."""
import os
import stat
import subprocess
import sys

import eventlet
import eventlet.wsgi
import pytest

from common.config import PROJECT_ROOT
from common.rabbitmq import ManagementApi
from tests.support import preflight
from tests.support.net import free_port


@pytest.fixture
def fake_plugins(tmp_path, monkeypatch):
    """A ``rabbitmq-plugins`` first on PATH that notes how it was called."""
    calls = tmp_path / "calls"
    tool = tmp_path / "bin" / "rabbitmq-plugins"
    tool.parent.mkdir()
    tool.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit ${{FAKE_PLUGINS_EXIT:-0}}\n')
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tool.parent}{os.pathsep}{os.environ['PATH']}")
    return calls


@pytest.fixture
def no_plugins_tool(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing there


def api_on(port: int) -> ManagementApi:
    return ManagementApi("amqp://guest:guest@127.0.0.1:5672/", url=f"http://127.0.0.1:{port}", timeout=1)


@pytest.fixture
def api_that_starts_once_enabled(fake_plugins):
    """A management API that answers 503 until the plugin has been enabled."""
    def app(environ, start_response):
        enabled = fake_plugins.exists() and "enable rabbitmq_management" in fake_plugins.read_text()
        start_response("200 OK" if enabled else "503 Service Unavailable", [("Content-Type", "application/json")])
        return [b"{}"]

    listener = eventlet.listen(("127.0.0.1", 0))
    server = eventlet.spawn(eventlet.wsgi.server, listener, app, log_output=False)
    yield api_on(listener.getsockname()[1])
    server.kill()


def test_a_local_broker_gets_its_plugin_enabled_and_the_api_is_waited_for(api_that_starts_once_enabled,
                                                                           fake_plugins):
    assert preflight.ensure_management_api(api_that_starts_once_enabled, wait_seconds=30) is None
    assert fake_plugins.read_text().split("\n")[0] == "enable rabbitmq_management"


def test_an_api_that_never_comes_up_is_reported(fake_plugins):
    problem = preflight.ensure_management_api(api_on(free_port()), wait_seconds=1)
    assert fake_plugins.read_text().strip() == "enable rabbitmq_management"
    assert "enabled but its API did not answer" in problem


def test_a_failing_plugin_command_is_reported_with_its_reason(fake_plugins, monkeypatch):
    monkeypatch.setenv("FAKE_PLUGINS_EXIT", "2")
    problem = preflight.ensure_management_api(api_on(free_port()), wait_seconds=1)
    assert "`rabbitmq-plugins enable rabbitmq_management` failed (exit 2" in problem


def test_without_rabbitmq_plugins_the_clear_message_stays(no_plugins_tool):
    problem = preflight.ensure_management_api(api_on(free_port()), wait_seconds=1)
    assert problem.endswith("enable it: rabbitmq-plugins enable rabbitmq_management")


class RemoteApi:
    url = "http://rabbit.internal:15672"

    def reachable(self):
        return False


def test_a_remote_broker_is_only_reported(fake_plugins):
    problem = preflight.ensure_management_api(RemoteApi(), wait_seconds=1)
    assert not fake_plugins.exists()
    assert "enable it on the broker's host: rabbitmq-plugins enable rabbitmq_management" in problem


def test_an_api_that_answers_needs_nothing(fake_plugins):
    class Up(RemoteApi):
        def reachable(self):
            return True

    assert preflight.ensure_management_api(Up()) is None
    assert not fake_plugins.exists()


@pytest.mark.parametrize("url, local", [
    ("http://127.0.0.1:15672", True), ("http://localhost:15672", True), ("http://[::1]:15672", True),
    ("http://rabbitmq:15672", False), ("http://10.0.0.7:15672", False)])
def test_which_brokers_are_this_machine(url, local):
    assert preflight.is_local(url) is local


def test_the_test_command_names_the_problem_on_a_broker_that_is_down():
    finished = subprocess.run(
        [sys.executable, "-m", "tests.support.preflight",
         f"amqp://guest:guest@127.0.0.1:{free_port()}/", f"postgresql://postgres@127.0.0.1:{free_port()}/x"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert finished.returncode == 1 and finished.stdout == ""
    assert "RabbitMQ is not reachable" in finished.stderr and "PostgreSQL is not reachable" in finished.stderr

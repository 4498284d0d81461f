"""``clinic run`` refusing to start says why in its log format: with
LOG_FORMAT=json, one JSON object a line, like everything a container writes."""
import json
import os
import subprocess

import pytest

from common.config import PROJECT_ROOT
from tests.support.net import free_port
from tests.support.ops import CLINIC, json_lines


def clinic_run(service: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([str(CLINIC), "run", service], env={**os.environ, "LOG_FORMAT": "json", **env},
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("service", ["intake", "all"])
def test_broker_down_is_one_json_line_and_exit_3(service):
    finished = clinic_run(service, AMQP_URI=f"amqp://guest:secret@127.0.0.1:{free_port()}/")
    assert finished.returncode == 3
    lines = json_lines(finished.stdout + finished.stderr)
    assert len(lines) == 1 and lines[0]["level"] == "ERROR"
    assert lines[0]["message"].startswith("RabbitMQ is not reachable at amqp://guest:***@127.0.0.1:")
    assert "secret" not in json.dumps(lines)
    if service == "intake":
        assert lines[0]["service"] == "intake"


def test_plain_lines_with_log_format_text():
    finished = clinic_run("intake", AMQP_URI=f"amqp://guest:guest@127.0.0.1:{free_port()}/", LOG_FORMAT="text")
    assert finished.returncode == 3
    assert "ERROR clinic.run: RabbitMQ is not reachable" in finished.stdout

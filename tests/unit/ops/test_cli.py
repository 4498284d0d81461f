"""The ``clinic`` command: argument parsing, exit codes and the parts that
need neither the broker nor PostgreSQL."""
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

import cli
from cli.health import probe_url
from cli.main import build_parser
from cli.migrate import migration_lock_key
from cli.outbox import outbox_state
from cli.queues import known_queue_names, queue_warning
from cli.services import SERVICES, service_env
from common.config import database_url, load_config
from common.outbox import outbox, plumbing_metadata
from gateway.http import parse_tokens

UNREACHABLE_BROKER = "amqp://guest:guest@127.0.0.1:1/"


@pytest.fixture(autouse=True)
def quiet_environment(monkeypatch):
    # The CLI reads config.yaml through the environment, as the services do.
    monkeypatch.delenv("RABBITMQ_MANAGEMENT_URL", raising=False)


@pytest.mark.parametrize("argv, code", [
    (["--help"], cli.EXIT_OK),
    (["dead-letters", "replay", "--help"], cli.EXIT_OK),
    ([], cli.EXIT_USAGE),
    (["frobnicate"], cli.EXIT_USAGE),
    (["run"], cli.EXIT_USAGE),
    (["run", "pharmacy"], cli.EXIT_USAGE),
    (["migrate", "gateway"], cli.EXIT_USAGE),      # the gateway has no database
    (["migrate", "pharmacy"], cli.EXIT_USAGE),
    (["outbox", "pharmacy"], cli.EXIT_USAGE),
    (["outbox", "--max-age", "soon"], cli.EXIT_USAGE),
    (["dead-letters"], cli.EXIT_USAGE),
    (["dead-letters", "replay"], cli.EXIT_USAGE),  # which ones must be said
    (["dead-letters", "replay", "--all", "--handler", "billing.on_x"], cli.EXIT_USAGE),
    (["dead-letters", "list", "--limit", "many"], cli.EXIT_USAGE),
    (["token", "--role", "clinician"], cli.EXIT_USAGE),
    (["token", "--role", "surgeon", "--user", "dr.x"], cli.EXIT_USAGE),
    (["token", "--role", "clinician", "--user", "dr:x"], cli.EXIT_USAGE),
    (["token", "--role", "clinician", "--user", "dr x"], cli.EXIT_USAGE),
])
def test_usage_and_exit_codes(argv, code, capsys):
    assert cli.main(argv) == code


def test_every_subcommand_has_help_text():
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    assert set(commands.choices) == {"run", "migrate", "queues", "outbox", "dead-letters", "token", "health"}
    helps = {action.dest: action.help for action in commands._choices_actions}
    assert all(helps[name] for name in commands.choices)


@pytest.mark.parametrize("argv", [
    ["queues"],
    ["dead-letters", "list"],
    ["dead-letters", "replay", "--all"],
])
def test_broker_down_is_exit_3_with_one_clear_line(argv, monkeypatch, capsys):
    monkeypatch.setenv("AMQP_URI", UNREACHABLE_BROKER)
    assert cli.main(argv) == cli.EXIT_BROKER_DOWN
    err = capsys.readouterr().err
    assert "RabbitMQ is not reachable at amqp://guest:***@127.0.0.1:1/" in err


def test_token_prints_an_entry_the_gateway_accepts(capsys):
    assert cli.main(["token", "--role", "billing", "--user", "m.jones"]) == cli.EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    token = lines[0].removeprefix("token: ")
    assert len(token) >= 40
    tokens = parse_tokens(lines[-1])
    assert (tokens[token].role, tokens[token].user) == ("billing", "m.jones")


def test_tokens_are_never_repeated(capsys):
    for _ in range(2):
        cli.main(["token", "--role", "admin", "--user", "it"])
    out = capsys.readouterr().out.splitlines()
    assert out[0] != out[3]


@pytest.mark.parametrize("address, live, url", [
    ("0.0.0.0:8003", False, "http://127.0.0.1:8003/ready"),
    ("0.0.0.0:8000", True, "http://127.0.0.1:8000/health"),
    ("127.0.0.1:8001", False, "http://127.0.0.1:8001/ready"),
    ("intake:8001", False, "http://intake:8001/ready"),
    (":8002", False, "http://127.0.0.1:8002/ready"),
])
def test_health_probes_the_process_own_address(address, live, url):
    assert probe_url(address, live) == url


def test_health_probe_of_a_closed_port_fails(capsys):
    from tests.support.net import free_port

    assert cli.main(["health", "--address", f"127.0.0.1:{free_port()}", "--timeout", "1"]) == cli.EXIT_FAILURE


def test_migration_lock_keys_are_stable_and_distinct():
    keys = {name: migration_lock_key(name) for name in SERVICES}
    assert len(set(keys.values())) == len(keys)
    assert migration_lock_key("billing") == keys["billing"]
    assert all(-2**63 <= key < 2**63 for key in keys.values())  # a PostgreSQL bigint


def test_every_service_process_names_itself_in_its_logs(monkeypatch):
    monkeypatch.delenv("WEB_SERVER_ADDRESS", raising=False)
    env = service_env("billing")
    assert env["CLINIC_SERVICE"] == "billing"
    assert env["WEB_SERVER_ADDRESS"].endswith(":8003")


@pytest.mark.parametrize("row, warning", [
    ({"queue": "rpc-billing", "ready": 0, "consumers": 2}, ""),
    ({"queue": "rpc-billing", "ready": 4, "consumers": 0}, "messages but no consumer"),
    ({"queue": "rpc-billing", "ready": None, "consumers": None}, "missing"),
    ({"queue": "clinic.dead-letters", "ready": 0, "consumers": 0}, ""),
    ({"queue": "clinic.dead-letters", "ready": None, "consumers": None}, ""),
    ({"queue": "clinic.dead-letters", "ready": 2, "consumers": 0}, "dead letters waiting"),
])
def test_queue_warnings(row, warning):
    assert queue_warning(row).startswith(warning)


def test_the_live_update_log_and_stream_tickets_are_kept_without_a_consumer_by_design():
    assert queue_warning({"queue": "clinic.live-updates", "ready": 5000, "consumers": 0}) == ""
    assert queue_warning({"queue": "clinic.stream-ticket." + "a" * 64, "ready": 1, "consumers": 0}) == ""


def test_known_queues_follow_nameko_naming():
    names = known_queue_names()
    assert "rpc-intake" in names and names[-1] == "clinic.dead-letters"
    assert all(n.startswith(("rpc-", "evt-")) for n in names[:-1])


# ------------------------------------------------------------- outbox on SQLite

@pytest.fixture
def sqlite_intake(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path}/intake.sqlite3"
    monkeypatch.setenv("INTAKE_DATABASE_URL", url)
    return sa.create_engine(url)


def add_row(engine, event_id, *, age_seconds=0, sent=False, attempts=0, error=None):
    created = datetime.now(timezone.utc) - timedelta(seconds=age_seconds)
    with engine.begin() as connection:
        connection.execute(outbox.insert().values(
            event_id=event_id, event_type="patient.registered", body="{}", created_at=created,
            sent_at=created if sent else None, attempts=attempts, last_error=error))


def test_outbox_of_an_unmigrated_database(sqlite_intake, capsys):
    assert cli.main(["outbox", "intake"]) == cli.EXIT_OK
    assert "not migrated" in capsys.readouterr().out


def test_outbox_backlog_age_and_last_error(sqlite_intake, capsys):
    plumbing_metadata.create_all(sqlite_intake)
    add_row(sqlite_intake, "e1", sent=True, age_seconds=500)
    add_row(sqlite_intake, "e2", age_seconds=120, attempts=3, error="ConnectionRefusedError: [Errno 111]")
    add_row(sqlite_intake, "e3", age_seconds=5)
    state = outbox_state(database_url(load_config(), "intake"))
    assert (state["pending"], state["failed_attempts"]) == (2, 1)
    assert 119 <= state["oldest_seconds"] < 180
    assert state["last_error"].startswith("ConnectionRefusedError")

    assert cli.main(["outbox", "intake", "--max-age", "600"]) == cli.EXIT_OK
    assert cli.main(["outbox", "intake", "--max-age", "60"]) == cli.EXIT_ATTENTION
    captured = capsys.readouterr()
    assert "older than 60.0s: intake" in captured.err


def test_outbox_of_an_unreachable_database_is_exit_4(monkeypatch, capsys):
    from tests.support.net import free_port

    monkeypatch.setenv("INTAKE_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere")
    assert cli.main(["outbox", "intake", "--json"]) == cli.EXIT_DATABASE_DOWN
    assert "unreachable" in capsys.readouterr().out


def test_migrate_an_unreachable_database_is_exit_4(monkeypatch, capsys):
    from tests.support.net import free_port

    monkeypatch.setenv("INTAKE_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere")
    assert cli.main(["migrate", "intake"]) == cli.EXIT_DATABASE_DOWN
    assert "not reachable" in capsys.readouterr().err

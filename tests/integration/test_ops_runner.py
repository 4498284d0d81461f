"""The container command itself: ``clinic run <service>`` (read from
docker-compose.yml) started as its own process with config.yaml and the
environment compose would give it. It migrates, becomes ready, logs JSON
lines without patient data, serves metrics, and replicas migrating at once
do not trip over each other."""
import os
import shutil
import subprocess
import uuid
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from nameko.standalone.rpc import ServiceRpcProxy

from cli.services import SERVICES, available_services, has_database
from common.errors import ValidationFailed
from common.config import PROJECT_ROOT
from common.migrations import alembic_config, current_revision, upgrade
from tests.support.databases import POSTGRES_ADMIN_URL
from tests.support.intake import PATIENT, approved_patient
from tests.support.net import free_port
from tests.support.ops import CLINIC, ClinicProcess, container_command, http_status, sample, scrape, wait_until

# Everything PATIENT says about the person; none of it may reach a log line.
PATIENT_DATA = ["Lopez", "Ana ", "\"Ana\"", PATIENT["phone"], PATIENT["email"], PATIENT["date_of_birth"],
                "Luis", PATIENT["emergency_contact"]["phone"]]


def local_command(service: str) -> list[str]:
    command = container_command(service)
    assert command[0] == "clinic"
    return [str(CLINIC), *command[1:]]


@pytest.fixture(scope="module")
def vhost_uri(vhost_pipeline, rabbit_manager, request):
    from urllib.parse import urlparse

    uri = urlparse(request.config.getoption("RABBIT_AMQP_URI"))
    with vhost_pipeline.get() as vhost:
        yield f"{uri.scheme}://{uri.netloc}/{vhost}"


def service_environment(service: str, amqp_uri: str, databases) -> dict:
    env = {"AMQP_URI": amqp_uri, "WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}",
           "LOG_LEVEL": "INFO", "LOG_FORMAT": "json", "OUTBOX_RELAY_INTERVAL": "0.5"}
    if has_database(service):
        env[f"{service.upper()}_DATABASE_URL"] = databases[service]
    return env


@pytest.fixture(scope="module")
def intake_process(vhost_uri, databases, tmp_path_factory):
    process = ClinicProcess(local_command("intake"), service_environment("intake", vhost_uri, databases),
                            tmp_path_factory.mktemp("intake") / "stdout.log")
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def clinic_day(intake_process, vhost_uri):
    """A patient walked through intake over RPC, plus one bad request."""
    with ServiceRpcProxy("intake", {"AMQP_URI": vhost_uri}, timeout=30) as intake:
        patient = approved_patient(lambda method, *args: getattr(intake, method)(*args))
        with pytest.raises(ValidationFailed):
            intake.register_patient({**PATIENT, "email": "ana.lopez-at-example.com"})
    # nameko answers an RPC call before its worker finishes: the line follows.
    wait_until(lambda: "register_patient finished: rejected" in intake_process.output(), message="the log line")
    return patient


def test_the_container_command_migrates_and_becomes_ready(intake_process):
    first = intake_process.json_lines()[0]  # the runner's own line is JSON too
    assert (first["message"], first["logger"], first["service"]) == ("migrated intake", "clinic.run", "intake")
    assert http_status(f"{intake_process.url}/health") == 200


def test_every_log_line_is_json_with_service_entrypoint_correlation_id_and_duration(intake_process, clinic_day):
    lines = intake_process.json_lines()  # fails on any line that is not JSON
    assert lines and all(line["service"] == "intake" for line in lines)
    finished = {line["entrypoint"]: line for line in lines if line.get("logger") == "clinic.entrypoint"}
    register = finished["register_patient"]
    assert register["kind"] == "rpc" and register["outcome"] in ("ok", "rejected")
    assert isinstance(register["duration_ms"], float) and register["correlation_id"]
    assert {"record_consent", "submit_questionnaire", "screen_patient", "approve_intake"} <= set(finished)
    assert not [line for line in lines if line.get("logger") == "nameko.containers" and line["level"] == "WARNING"]
    rejected = [line for line in lines if line.get("entrypoint") == "register_patient"
                and line.get("outcome") == "rejected"]
    assert rejected and rejected[0]["error"] == "ValidationFailed"


def test_no_log_line_holds_a_patient_name_contact_or_birth_date(intake_process, clinic_day):
    output = intake_process.output()
    assert "register_patient finished" in output
    leaked = [value for value in PATIENT_DATA + ["ana.lopez-at-example.com"] if value in output]
    assert leaked == []


def test_the_process_serves_prometheus_metrics(intake_process, clinic_day):
    families = scrape(intake_process.url)
    assert sample(families, "clinic_entrypoint_calls", service="intake", entrypoint="approve_intake",
                  kind="rpc", outcome="ok") == 1
    assert sample(families, "clinic_entrypoint_calls", service="intake", entrypoint="register_patient",
                  kind="rpc", outcome="rejected") == 1
    wait_until(lambda: sample(scrape(intake_process.url), "clinic_outbox_backlog", service="intake") == 0,
               message="the outbox drained")


def test_every_other_container_command_starts_and_becomes_ready(vhost_uri, databases, intake_process, tmp_path):
    others = [name for name in available_services() if name != "intake"]
    processes = {}
    for name in others:
        env = service_environment(name, vhost_uri, databases)
        if name == "gateway":
            env.update({f"{svc.upper()}_HEALTH_URL": intake_process.url if svc == "intake"
                        else f"http://127.0.0.1:{free_port()}" for svc in SERVICES if svc != "gateway"})
        processes[name] = ClinicProcess(local_command(name), env, tmp_path / f"{name}.log")
    try:
        for process in processes.values():  # all at once, then each is waited for
            process.launch()
        for name, process in processes.items():
            process.wait_until_up("health" if name == "gateway" else "ready")
            assert "clinic_entrypoint_calls" in scrape(process.url)
            process.json_lines()
    finally:
        for process in processes.values():
            process.stop()
    if "gateway" in processes:
        assert "starting services: gateway" in processes["gateway"].output()


@pytest.fixture
def fresh_intake_database():
    name = f"clinic_test_migrate_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_replicas_starting_together_migrate_once(fresh_intake_database):
    # `docker compose up --scale intake=3`: three `clinic run intake` migrate at once.
    env_url = {"INTAKE_DATABASE_URL": fresh_intake_database}
    replicas = [subprocess.Popen([str(CLINIC), "migrate", "intake"], env={**os.environ, **env_url},
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(3)]
    results = [(replica.wait(timeout=60), replica.stdout.read().decode()) for replica in replicas]
    assert [code for code, _ in results] == [0, 0, 0], results
    head = ScriptDirectory.from_config(alembic_config("intake", fresh_intake_database)).get_current_head()
    assert current_revision(fresh_intake_database) == head


INIT_SCRIPT = PROJECT_ROOT / "docker" / "postgres" / "init-databases.sh"


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql (the PostgreSQL client) is not installed")
def test_postgres_first_start_gives_each_service_a_role_that_can_migrate_its_own_database():
    # What the postgres container runs on its first start, against the local
    # server, with names of this run's own.
    run = uuid.uuid4().hex[:6]
    names = {service: f"ops{run}_{service}" for service in SERVICES if has_database(service)}
    admin_url = urlsplit(POSTGRES_ADMIN_URL)
    env = {**os.environ, "POSTGRES_USER": admin_url.username, "PGHOST": admin_url.hostname,
           "PGPORT": str(admin_url.port or 5432), "CLINIC_DATABASES": " ".join(names.values()),
           **{f"{name.upper()}_DB_PASSWORD": f"pw-{run}" for name in names.values()}}
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        result = subprocess.run(["bash", str(INIT_SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        for service, name in names.items():
            url = f"postgresql+psycopg2://{name}:pw-{run}@{admin_url.hostname}:{admin_url.port or 5432}/{name}"
            upgrade(service, url)  # as the service's own role, not a superuser
            head = ScriptDirectory.from_config(alembic_config(service, url)).get_current_head()
            assert current_revision(url) == head
        with admin.connect() as connection:
            owners = dict(connection.execute(sa.text(
                "SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname LIKE :prefix"),
                {"prefix": f"ops{run}_%"}).all())
            assert owners == {name: name for name in names.values()}
            superusers = connection.execute(sa.text(
                "SELECT count(*) FROM pg_roles WHERE rolname LIKE :prefix AND rolsuper"),
                {"prefix": f"ops{run}_%"}).scalar_one()
            assert superusers == 0
    finally:
        with admin.connect() as connection:
            for name in names.values():
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                connection.execute(sa.text(f'DROP ROLE IF EXISTS "{name}"'))
        admin.dispose()

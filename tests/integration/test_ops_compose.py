"""docker-compose.yml and the Dockerfile, checked without a Docker engine
(there is none on these machines): the file is valid for docker-compose,
every clinic container runs exactly the local runner's command (which
tests/integration/test_ops_runner.py runs), and the deployment rules of
issue 6 hold."""
import re
import shutil
import subprocess

import pytest

from cli.services import SERVICES, has_database
from common.config import PROJECT_ROOT
from tests.support.ops import COMPOSE_FILE, DOCKERFILE, compose, container_command, dockerfile_instruction

DOCKER_COMPOSE = shutil.which("docker-compose")
ENV_EXAMPLE = PROJECT_ROOT / ".env.example"
INIT_SCRIPT = PROJECT_ROOT / "docker" / "postgres" / "init-databases.sh"


def docker_compose(*args, env=None):
    return subprocess.run([DOCKER_COMPOSE, "--project-directory", str(PROJECT_ROOT), "-f", str(COMPOSE_FILE), *args],
                          capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.skipif(DOCKER_COMPOSE is None, reason="the docker-compose binary is not installed "
                                                   "(Debian: apt-get install docker-compose)")
def test_docker_compose_accepts_the_file_with_the_example_environment():
    result = docker_compose("--env-file", str(ENV_EXAMPLE), "config", "-q", env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(DOCKER_COMPOSE is None, reason="the docker-compose binary is not installed")
def test_docker_compose_refuses_to_start_without_the_secrets(tmp_path):
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = docker_compose("--env-file", str(empty), "config", "-q", env={"PATH": "/usr/bin:/bin"})
    assert result.returncode != 0
    assert "PASSWORD" in result.stderr or "OIDC_" in result.stderr


@pytest.mark.parametrize("service", list(SERVICES))
def test_each_container_runs_the_local_runner_command(service):
    assert container_command(service) == ["clinic", "run", service]


@pytest.mark.parametrize("service", list(SERVICES))
def test_each_container_listens_where_the_runner_would(service):
    env = compose()["services"][service]["environment"]
    assert env["WEB_SERVER_ADDRESS"] == f"0.0.0.0:{SERVICES[service][1]}"


@pytest.mark.parametrize("service", [name for name in SERVICES if has_database(name)])
def test_each_service_has_its_own_postgresql_database_and_role(service):
    config_text = (PROJECT_ROOT / "config.yaml").read_text()
    variable = f"{service.upper()}_DATABASE_URL"
    assert f"{service}: ${{{variable}:" in config_text, "config.yaml must read the variable compose sets"
    url = compose()["services"][service]["environment"][variable]
    assert re.fullmatch(rf"postgresql://{service}:\$\{{{service.upper()}_DB_PASSWORD:\?[^}}]+\}}@postgres:5432/{service}",
                        url), url
    # and the first start of PostgreSQL creates that database and role
    assert f"{service.upper()}_DB_PASSWORD" in compose()["services"]["postgres"]["environment"]
    assert service in re.search(r"CLINIC_DATABASES:-([a-z ]+)", INIT_SCRIPT.read_text()).group(1).split()


def test_every_container_has_a_health_check_and_waits_for_healthy_dependencies():
    services = compose()["services"]
    image_has_healthcheck = bool(re.search(r"^HEALTHCHECK .*CMD", DOCKERFILE.read_text(), re.MULTILINE | re.DOTALL))
    for name, entry in services.items():
        built_here = "build" in entry
        assert entry.get("healthcheck") or (built_here and image_has_healthcheck), f"{name} has no health check"
        for dependency in entry.get("depends_on", {}).values():
            assert dependency == {"condition": "service_healthy"}, name
    for name in SERVICES:
        assert {"rabbitmq"} <= set(services[name]["depends_on"]), name
        if has_database(name):
            assert "postgres" in services[name]["depends_on"], name
    assert set(services["gateway"]["depends_on"]) >= {n for n in SERVICES if has_database(n)}


def test_infrastructure_ui_and_volumes():
    document = compose()
    services = document["services"]
    assert services["rabbitmq"]["image"].endswith("-management")
    assert any(str(port).endswith(":15672") for port in services["rabbitmq"]["ports"])
    assert any(str(port).endswith(":8025") for port in services["mailpit"]["ports"])  # the SMTP catcher's UI
    assert services["notifications"]["environment"]["SMTP_HOST"].endswith(":-mailpit}")
    assert any(v.endswith(":/var/lib/postgresql/data") for v in services["postgres"]["volumes"])
    assert any(v.endswith(":/var/lib/rabbitmq") for v in services["rabbitmq"]["volumes"])
    assert {"postgres-data", "rabbitmq-data"} <= set(document["volumes"])


def test_workers_publish_no_host_port_so_they_can_be_scaled():
    # `docker compose up --scale billing=3` fails if a replica binds a host port.
    services = compose()["services"]
    for name in SERVICES:
        if has_database(name):
            assert "ports" not in services[name], f"{name} publishes a host port"
            assert "container_name" not in services[name]


def test_configuration_comes_from_the_environment_and_every_required_variable_is_in_the_example():
    text = "\n".join(line for line in COMPOSE_FILE.read_text().splitlines() if not line.lstrip().startswith("#"))
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    example = dict(line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines()
                   if line and not line.startswith("#"))
    assert required <= set(example), required - set(example)
    assert {"RABBITMQ_PASSWORD", "POSTGRES_PASSWORD", "OIDC_ISSUER", "OIDC_AUDIENCE"} <= required
    services = compose()["services"]
    assert not [name for name, entry in services.items() if "env_file" in entry]
    for name, entry in services.items():
        for key, value in (entry.get("environment") or {}).items():
            if re.search(r"PASSWORD|TOKENS|_KEY$", key) and value:
                assert value.startswith("${"), f"{name}: {key} is written into the file"


def test_the_image_is_small_pinned_and_runs_as_a_non_root_user():
    dockerfile = DOCKERFILE.read_text()
    assert re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)[-1] == "python:3.11-slim"
    user = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert user and not user[-1].startswith(("root", "0"))
    assert "--constraint requirements.txt" in dockerfile
    assert dockerfile_instruction("ENTRYPOINT") == ["clinic"]
    pins = [line for line in (PROJECT_ROOT / "requirements.txt").read_text().splitlines()
            if line and not line.startswith("#")]
    assert pins and all("==" in line for line in pins), "every requirement pinned exactly"
    ignored = (PROJECT_ROOT / ".dockerignore").read_text().splitlines()
    assert ignored[ignored.index("*") if "*" in ignored else 0] == "*"  # nothing by default: no .venv, var/, .git
    assert "!.env" not in ignored


def config_variables() -> dict[str, set[str]]:
    """The environment variables config.yaml reads, by top-level key."""
    sections: dict[str, set[str]] = {}
    current = None
    for line in (PROJECT_ROOT / "config.yaml").read_text().splitlines():
        top = re.match(r"^([A-Z_]+):", line)
        if top:
            current = top.group(1)
        if current and not line.lstrip().startswith("#"):
            sections.setdefault(current, set()).update(re.findall(r"\$\{([A-Z0-9_]+):", line))
    return sections


@pytest.mark.parametrize("service", [name for name in SERVICES if name != "gateway"])
def test_every_setting_of_a_service_can_be_given_to_its_container(service):
    # A variable config.yaml reads for a service but compose does not pass
    # on could only be changed by rebuilding the image.
    wanted = config_variables().get(service.upper(), set())
    passed = set(compose()["services"][service]["environment"])
    missing = wanted - passed
    assert not missing, (f"config.yaml's {service.upper()} section reads {sorted(missing)}: add them to the "
                         f"{service} environment in docker-compose.yml (a bare `NAME:` passes it through) "
                         f"and to .env.example")


def test_the_shared_settings_reach_every_container():
    shared = {"AMQP_URI", "WEB_SERVER_ADDRESS", "LOG_LEVEL", "LOG_FORMAT", "EVENT_MAX_ATTEMPTS", "OUTBOX_RELAY_INTERVAL"}
    variables = config_variables()
    read = set().union(*(variables.get(key, set()) for key in
                         ("AMQP_URI", "WEB_SERVER_ADDRESS", "LOG_LEVEL", "LOGGING", "EVENT_MAX_ATTEMPTS",
                          "OUTBOX_RELAY_INTERVAL")))
    assert read - {"CLINIC_SERVICE"} == shared  # CLINIC_SERVICE is set by `clinic run` itself
    for name in SERVICES:
        assert shared <= set(compose()["services"][name]["environment"]), name
    gateway = set(compose()["services"]["gateway"]["environment"])
    oidc = {"OIDC_ISSUER", "OIDC_AUDIENCE", "OIDC_JWKS_URL", "OIDC_ROLES_CLAIM", "OIDC_ROLE_MAP", "OIDC_USER_CLAIM",
            "OIDC_JWKS_REFRESH_SECONDS"}
    assert set().union(*(variables[key] for key in oidc)) <= gateway
    assert variables["CORS_ORIGINS"] | variables["GATEWAY_TOKENS"] | variables["SERVICE_HEALTH_URLS"] <= gateway

"""Configuration: nameko's YAML with ``${ENV:default}`` substitution."""
from __future__ import annotations

import os
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "config.yaml"


def config_path() -> Path:
    return Path(os.environ.get("CLINIC_CONFIG", DEFAULT_CONFIG_PATH))


def load_config(path: str | os.PathLike | None = None) -> dict:
    """Read the config file the way ``nameko run --config`` does, so the
    runner, the CLI and the tests all see the same values."""
    from nameko.cli.main import setup_yaml_parser

    setup_yaml_parser()
    with open(path or config_path()) as stream:
        return yaml.safe_load(stream)


def database_url(config: dict, service_name: str) -> str:
    url = config.get("DATABASE_URLS", {}).get(service_name)
    if not url:
        raise KeyError(f"no DATABASE_URLS entry for service {service_name!r}")
    return driver_url(_anchor_sqlite_path(url))


def driver_url(url: str) -> str:
    # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; the services use
    # psycopg2, which common.database makes cooperative under eventlet.
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            return "postgresql+psycopg2://" + url[len(bare):]
    return url


def _anchor_sqlite_path(url: str) -> str:
    # A relative SQLite path means "under the project", whatever the working
    # directory of whoever starts the service.
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        path = PROJECT_ROOT / url[len(prefix):]
        path.parent.mkdir(parents=True, exist_ok=True)
        return prefix + str(path)
    return url


def section(config: dict, name: str) -> dict:
    return dict(config.get(name) or {})

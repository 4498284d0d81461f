"""What every command shares: exit codes, tables, and saying plainly that
the broker is not there."""
from __future__ import annotations

import sys
from urllib.parse import urlsplit, urlunsplit

# 0 done; 1 failed; 2 bad usage; 3 RabbitMQ unreachable; 4 a database
# unreachable; 5 done, but something needs an operator (an old outbox
# backlog, dead letters with --fail-if-any, letters kept by a replay).
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_BROKER_DOWN, EXIT_DATABASE_DOWN, EXIT_ATTENTION = 0, 1, 2, 3, 4, 5


def redact(uri: str) -> str:
    # A cluster's AMQP_URI names each node, with its password, separated by ";".
    return ";".join(_redact_one(part) for part in uri.split(";"))


def _redact_one(uri: str) -> str:
    parts = urlsplit(uri)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return uri


def broker_unreachable_message(uri: str) -> str:
    return (f"RabbitMQ is not reachable at {redact(uri)}. Start it (Debian: `rabbitmq-server -detached`; "
            "Docker: `docker compose up -d rabbitmq`) or point AMQP_URI at a running broker.")


def check_broker(config: dict) -> bool:
    from common.service import broker_reachable

    uri = config["AMQP_URI"]
    if broker_reachable(uri, timeout=3):
        return True
    print(broker_unreachable_message(uri), file=sys.stderr)
    return False


def cell(value) -> str:
    return "-" if value is None else str(value)


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows)]
    for row in [headers, *rows]:
        print("  ".join(str(c).ljust(width) for c, width in zip(row, widths)).rstrip())

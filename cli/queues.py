"""``clinic queues``: every queue's depth and consumers, from the management
API, or by passive declares of the services' own queues without it."""
from __future__ import annotations

import importlib
import json

from cli.console import EXIT_BROKER_DOWN, EXIT_OK, cell, check_broker, print_table, redact
from cli.services import SERVICES, available_services
from common.config import load_config


def queue_stats_from_management(amqp_uri: str, url: str | None = None) -> list[dict]:
    """Every queue of the vhost, from the management plugin's HTTP API."""
    from common.rabbitmq import ManagementApi

    return [
        {"queue": q["name"], "ready": q.get("messages_ready", 0) or 0,
         "unacked": q.get("messages_unacknowledged", 0) or 0, "consumers": q.get("consumers", 0) or 0}
        for q in ManagementApi(amqp_uri, url).queues()
    ]


def known_queue_names() -> list[str]:
    """The queues this checkout's services consume from, derived from their
    entrypoints the way nameko names them, plus the dead-letter queue."""
    from nameko.events import SERVICE_POOL, EventHandler
    from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
    from nameko.rpc import Rpc

    from common.deadletters import DEAD_LETTER_QUEUE

    names = []
    for service in available_services():
        module, class_name = SERVICES[service][0].split(":")
        cls = getattr(importlib.import_module(module), class_name)
        for attr in dir(cls):
            for entrypoint in getattr(getattr(cls, attr, None), ENTRYPOINT_EXTENSIONS_ATTR, ()):
                if isinstance(entrypoint, Rpc):
                    names.append(f"rpc-{service}")
                elif isinstance(entrypoint, EventHandler) and entrypoint.handler_type == SERVICE_POOL:
                    names.append(f"evt-{entrypoint.source_service}-{entrypoint.event_type}--{service}.{attr}")
    return sorted(set(names)) + [DEAD_LETTER_QUEUE]


def queue_stats_from_amqp(amqp_uri: str, names: list[str]) -> list[dict]:
    """Passive declares: the fallback when the management API is not
    reachable; sees only the queues named, and no unacked count."""
    from amqp.exceptions import NotFound as QueueNotFound
    from kombu import Connection

    stats = []
    with Connection(amqp_uri, connect_timeout=5) as connection:
        for name in names:
            channel = connection.channel()  # a missing queue closes its channel
            try:
                _, ready, consumers = channel.queue_declare(name, passive=True)
                stats.append({"queue": name, "ready": ready, "unacked": None, "consumers": consumers})
            except QueueNotFound:
                stats.append({"queue": name, "ready": None, "unacked": None, "consumers": None})
            finally:
                try:
                    channel.close()
                except Exception:
                    pass
    return stats


def queue_warning(row: dict) -> str:
    from common.deadletters import DEAD_LETTER_QUEUE, DISCARDED_QUEUE
    from common.handlers import RETRY_QUEUE_PREFIX
    from gateway.live_updates import STREAM_QUEUE, TICKET_QUEUE_PREFIX

    if row["queue"] == DEAD_LETTER_QUEUE:
        return "dead letters waiting: clinic dead-letters list" if row["ready"] else ""
    if row["queue"] == DISCARDED_QUEUE:
        return ""  # the audit record of discarded letters: nobody consumes it
    if row["queue"] == STREAM_QUEUE or row["queue"].startswith(TICKET_QUEUE_PREFIX):
        # The live-update log keeps its events for the replay window, read
        # or not; a stream ticket waits for its one redemption.
        return ""
    if row["queue"].startswith(RETRY_QUEUE_PREFIX):
        # Delay queues have no consumer by design: the broker moves their messages on.
        return "events waiting for a retry" if row["ready"] else ""
    if row["ready"] is None:
        return "missing (its service has not started on this broker)"
    if row["ready"] and not row["consumers"]:
        return "messages but no consumer"
    return ""


def cmd_queues(args) -> int:
    config = load_config()
    uri = config["AMQP_URI"]
    if not check_broker(config):
        return EXIT_BROKER_DOWN
    source = "management API"
    try:
        rows = queue_stats_from_management(uri, args.management_url)
    except Exception:
        source = "AMQP (management API unreachable: known queues only, no unacked counts)"
        rows = queue_stats_from_amqp(uri, known_queue_names())
    rows.sort(key=lambda row: row["queue"])
    if args.json:
        print(json.dumps({"source": source, "queues": rows}, indent=2))
        return EXIT_OK
    print(f"queues on {redact(uri)} (from {source})")
    print_table(
        ["queue", "ready", "unacked", "consumers", ""],
        [[r["queue"], cell(r["ready"]), cell(r["unacked"]), cell(r["consumers"]), queue_warning(r)] for r in rows],
    )
    return EXIT_OK


def add_parser(commands) -> None:
    queues = commands.add_parser(
        "queues", help="queue depths and consumer counts",
        description="Every queue's ready and unacknowledged messages and its consumers, from the "
                    "RabbitMQ management API (RABBITMQ_MANAGEMENT_URL, default http://<AMQP host>:15672), "
                    "or by passive declares of the services' own queues when it is unreachable.")
    queues.add_argument("--management-url", help="e.g. http://rabbitmq:15672 (default: RABBITMQ_MANAGEMENT_URL)")
    queues.add_argument("--json", action="store_true", help="machine-readable output")
    queues.set_defaults(func=cmd_queues)

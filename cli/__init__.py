"""``clinic``: the one command for running and operating the clinic.

    clinic run all                  migrate, then run every service and the gateway
    clinic run SERVICE              migrate, then run one service (what a container runs)
    clinic migrate [SERVICE...]     apply database migrations
    clinic queues                   queue depths and consumer counts on the broker
    clinic outbox [SERVICE...]      events committed but not yet published, per service
    clinic dead-letters list        messages whose handler failed for good, with the error
    clinic dead-letters replay      send them back to the handler that failed
    clinic token --role R --user U  a new API token and its GATEWAY_TOKENS entry
    clinic health [--live]          probe this process's /ready (container health check)

One module per command group (``run``, ``migrate``, ``queues``, ``outbox``,
``dead_letters``, ``tokens``, ``health``), each adding its own sub-parser;
``services`` is the map of what runs where, ``console`` the exit codes and
what every command prints with. Exit codes: see ``cli.console``.
"""
from cli.console import (
    EXIT_ATTENTION, EXIT_BROKER_DOWN, EXIT_DATABASE_DOWN, EXIT_FAILURE, EXIT_OK, EXIT_USAGE,
)
from cli.main import build_parser, main

# `clinic` is cli:main; scripts and tests compare against the exit codes.
__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAILURE", "EXIT_USAGE", "EXIT_BROKER_DOWN",
           "EXIT_DATABASE_DOWN", "EXIT_ATTENTION"]

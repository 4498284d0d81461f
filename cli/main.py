"""The ``clinic`` console script: one sub-parser per command group."""
from __future__ import annotations

import argparse
import warnings

from cli import dead_letters, health, migrate, outbox, queues, run, tokens
from cli.console import EXIT_USAGE

# In the order `clinic --help` lists them.
COMMAND_GROUPS = (run, migrate, queues, outbox, dead_letters, tokens, health)

EPILOG = """exit codes:
  0  done
  1  failed (a health probe failed, a replay matched nothing)
  2  bad usage
  3  RabbitMQ unreachable (AMQP_URI)
  4  a database unreachable (DATABASE_URLS / <SERVICE>_DATABASE_URL)
  5  done, but an operator should look (old outbox backlog, dead letters)

Configuration comes from config.yaml (CLINIC_CONFIG) and the environment
variables it names, exactly as the services read it."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clinic", description="Run and operate the clinic services.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.add_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    # eventlet announces its deprecation on import: noise in an operator's terminal.
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or bad usage (2), as an exit code
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    return args.func(args)

"""``clinic health``: probe this process's /ready (or /health): the
container health check."""
from __future__ import annotations

import os
import sys

from cli.console import EXIT_FAILURE, EXIT_OK


def probe_url(address: str | None, live: bool) -> str:
    address = address or os.environ.get("WEB_SERVER_ADDRESS", "127.0.0.1:8000")
    host, _, port = address.rpartition(":")
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    return f"http://{host}:{port}/{'health' if live else 'ready'}"


def cmd_health(args) -> int:
    import urllib.error
    import urllib.request

    url = probe_url(args.address, args.live)
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as answer:
            print(answer.read().decode()[:500])
            return EXIT_OK
    except urllib.error.HTTPError as exc:
        print(exc.read().decode()[:500], file=sys.stderr)
    except OSError as exc:
        print(f"{url}: {exc}", file=sys.stderr)
    return EXIT_FAILURE


def add_parser(commands) -> None:
    health = commands.add_parser("health", help="probe this process's /ready (or /health with --live)",
                                 description="Exit 0 when the service answers 200: the container health check.")
    health.add_argument("--live", action="store_true", help="liveness (/health) instead of readiness (/ready)")
    health.add_argument("--address", help="HOST:PORT (default: WEB_SERVER_ADDRESS)")
    health.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")
    health.set_defaults(func=cmd_health)

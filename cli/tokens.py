"""``clinic token``: a new gateway bearer token and the GATEWAY_TOKENS entry
that grants it; nothing is stored."""
from __future__ import annotations

import secrets
import sys

from cli.console import EXIT_OK, EXIT_USAGE

ROLES = ("front_desk", "clinician", "billing", "admin")


def cmd_token(args) -> int:
    if args.role not in ROLES:
        print(f"unknown role {args.role!r}; choose from {', '.join(ROLES)}", file=sys.stderr)
        return EXIT_USAGE
    if not args.user or any(ch in args.user for ch in ":, \t"):
        print("--user must be a name without ':', ',' or spaces", file=sys.stderr)
        return EXIT_USAGE
    token = secrets.token_urlsafe(32)
    print(f"token: {token}")
    print("add this entry to GATEWAY_TOKENS (comma separated) and restart the gateway:")
    print(f"{token}:{args.role}:{args.user}")
    return EXIT_OK


def add_parser(commands) -> None:
    token = commands.add_parser("token", help="create a gateway API token",
                                description="Print a new random bearer token and the GATEWAY_TOKENS entry "
                                            "that grants it; nothing is stored.")
    token.add_argument("--role", required=True, help=f"one of: {', '.join(ROLES)}")
    token.add_argument("--user", required=True, help="who the token is for, as audit records name them")
    token.set_defaults(func=cmd_token)

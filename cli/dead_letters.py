"""``clinic dead-letters``: the dead-letter queue, listed and replayed
through the functions of common.deadletters."""
from __future__ import annotations

import json
import sys

from cli.console import EXIT_ATTENTION, EXIT_BROKER_DOWN, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, check_broker, print_table
from common.config import load_config


def cmd_dead_letters_list(args) -> int:
    from common.deadletters import list_dead_letters, summary

    config = load_config()
    if not check_broker(config):
        return EXIT_BROKER_DOWN
    letters = list_dead_letters(config["AMQP_URI"], limit=args.limit)
    if args.handler:
        letters = [letter for letter in letters if letter.get("handler") == args.handler]
    if args.json:
        # Whole letters, bodies included, for a ticket or a script.
        print(json.dumps(letters, indent=2))
    elif not letters:
        print("no dead letters")
    else:
        print_table(
            ["failed at", "handler", "attempts", "event", "event id", "error"],
            [[s["failed_at"], s["handler"], s["attempts"], s.get("event_type") or "-",
              s.get("event_id") or "-", (s["error"] or "")[:100]]
             for s in map(summary, letters)],
        )
        if len(letters) == args.limit:
            print(f"(first {args.limit} shown; --limit to see more)")
    return EXIT_ATTENTION if letters and args.fail_if_any else EXIT_OK


def cmd_dead_letters_replay(args) -> int:
    from common.deadletters import replay_dead_letters

    if not (args.all or args.handler or args.event_id):
        print("say which dead letters to replay: --event-id ID, --handler SERVICE.METHOD or --all",
              file=sys.stderr)
        return EXIT_USAGE
    config = load_config()
    if not check_broker(config):
        return EXIT_BROKER_DOWN
    result = replay_dead_letters(config["AMQP_URI"], only_handler=args.handler,
                                 only_event_id=args.event_id, limit=args.limit)
    print(f"replayed {result.replayed} dead letter(s)")
    if result.orphaned:
        print(f"kept {len(result.orphaned)} whose handler queue does not exist: "
              f"{', '.join(sorted(set(result.orphaned)))} (start that service, then replay again)",
              file=sys.stderr)
        return EXIT_ATTENTION
    if not result.replayed and (args.event_id or args.handler):
        print("no dead letter matched", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def add_parser(commands) -> None:
    dead = commands.add_parser("dead-letters", help="list or replay dead letters",
                               description="Messages whose handler failed EVENT_MAX_ATTEMPTS times (or "
                                           "rejected them outright), kept with the error.")
    actions = dead.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="show dead letters, oldest first, without removing them")
    listing.add_argument("--handler", help="only this handler, e.g. billing.on_session_completed")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    listing.add_argument("--json", action="store_true", help="whole letters, event bodies included")
    listing.add_argument("--fail-if-any", action="store_true", help="exit 5 when there is any (for monitoring)")
    listing.set_defaults(func=cmd_dead_letters_list)

    replay = actions.add_parser(
        "replay", help="send dead letters back to the handler that failed",
        description="Fix the cause first. Handlers apply each event once, so replaying is safe.")
    which = replay.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="every dead letter")
    which.add_argument("--handler", help="every dead letter of this handler, e.g. billing.on_session_completed")
    which.add_argument("--event-id", help="the dead letter of this one event")
    replay.add_argument("--limit", type=int, help="at most this many")
    replay.set_defaults(func=cmd_dead_letters_replay)

"""``clinic dead-letters``: the dead-letter queue, listed, replayed and
discarded through the functions of common.deadletter_operations."""
from __future__ import annotations

import json
import sys

from cli.console import EXIT_ATTENTION, EXIT_BROKER_DOWN, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, check_broker, print_table
from common.config import load_config


def cmd_dead_letters_list(args) -> int:
    from common.deadletter_operations import list_dead_letters, listing_rows

    config = load_config()
    if not check_broker(config):
        return EXIT_BROKER_DOWN
    letters = list_dead_letters(config["AMQP_URI"], limit=args.limit, discarded=args.discarded)
    if args.handler:
        letters = [letter for letter in letters if letter.get("handler") == args.handler]
    if args.json:
        print(json.dumps(letters, indent=2))  # ids and reasons; bodies stay in the queue
    elif not letters:
        print("no discarded dead letters" if args.discarded else "no dead letters")
    else:
        print_table(*listing_rows(letters))
        if len(letters) == args.limit:
            print(f"(first {args.limit} shown; --limit to see more)")
    return EXIT_ATTENTION if letters and args.fail_if_any else EXIT_OK


def cmd_dead_letters_replay(args) -> int:
    from common.deadletter_operations import replay_dead_letters

    if not (args.all or args.handler or args.event_id or args.letter_id):
        print("say which dead letters to replay: --letter-id ID, --event-id ID, --handler SERVICE.METHOD or --all",
              file=sys.stderr)
        return EXIT_USAGE
    config = load_config()
    if not check_broker(config):
        return EXIT_BROKER_DOWN
    result = replay_dead_letters(config["AMQP_URI"], only_handler=args.handler,
                                 only_event_id=args.event_id, only_letter_id=args.letter_id, limit=args.limit)
    print(f"replayed {result.replayed} dead letter(s)")
    if result.orphaned:
        print(f"kept {len(result.orphaned)} whose handler queue does not exist: "
              f"{', '.join(sorted(set(result.orphaned)))} (start that service, then replay again)",
              file=sys.stderr)
        return EXIT_ATTENTION
    if not result.replayed and (args.event_id or args.handler or args.letter_id):
        print("no dead letter matched", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def cmd_dead_letters_discard(args) -> int:
    from common.deadletter_operations import discard_dead_letters

    if not (args.actor.strip() and args.reason.strip()):
        print("--actor and --reason must say who discards and why", file=sys.stderr)
        return EXIT_USAGE
    config = load_config()
    if not check_broker(config):
        return EXIT_BROKER_DOWN
    discarded = discard_dead_letters(config["AMQP_URI"], actor=args.actor, reason=args.reason,
                                     only_letter_id=args.letter_id, only_event_id=args.event_id,
                                     only_handler=args.handler, queue_type_config=config)
    print(f"discarded {len(discarded)} dead letter(s): {', '.join(discarded) or '-'}")
    if not discarded:
        print("no dead letter matched", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def add_parser(commands) -> None:
    dead = commands.add_parser("dead-letters", help="list, replay or discard dead letters",
                               description="Messages that could not be applied: rejected as bad, undecodable, "
                                           "failed EVENT_MAX_ATTEMPTS times or through a whole "
                                           "EVENT_OUTAGE_WINDOW, or past a quorum queue's delivery limit.")
    actions = dead.add_subparsers(dest="action", required=True, metavar="ACTION")

    listing = actions.add_parser("list", help="show dead letters, oldest first, without removing them")
    listing.add_argument("--handler", help="only this handler, e.g. billing.on_session_completed")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    listing.add_argument("--json", action="store_true", help="machine-readable (ids and reasons, no bodies)")
    listing.add_argument("--fail-if-any", action="store_true", help="exit 5 when there is any (for monitoring)")
    listing.add_argument("--discarded", action="store_true",
                         help="the discarded letters instead, with who discarded them, when and why")
    listing.set_defaults(func=cmd_dead_letters_list)

    replay = actions.add_parser(
        "replay", help="send dead letters back to the handler that failed",
        description="Fix the cause first. Handlers apply each event once, so replaying is safe.")
    which = replay.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="every dead letter")
    which.add_argument("--handler", help="every dead letter of this handler, e.g. billing.on_session_completed")
    which.add_argument("--event-id", help="the dead letter of this one event")
    which.add_argument("--letter-id", help="this one dead letter (its id in the listing)")
    replay.add_argument("--limit", type=int, help="at most this many")
    replay.set_defaults(func=cmd_dead_letters_replay)

    discard = actions.add_parser(
        "discard", help="give up on dead letters for good, with who and why",
        description="Moves the letters to clinic.dead-letters.discarded with who discarded them, when "
                    "and why (list --discarded shows them); a line with their ids is logged.")
    chosen = discard.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--letter-id", help="this one dead letter (its id in the listing)")
    chosen.add_argument("--event-id", help="the dead letter(s) of this one event")
    chosen.add_argument("--handler", help="every dead letter of this handler")
    discard.add_argument("--actor", required=True, help="who discards them, as audit records name people")
    discard.add_argument("--reason", required=True, help="why they can never be applied")
    discard.set_defaults(func=cmd_dead_letters_discard)

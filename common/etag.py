"""Entity tags for optimistic concurrency: a read answers ``ETag``, a change
sent with ``If-Match`` goes ahead only if the record still reads the same.

The tag is a hash of the record's answer as its read returns it, so the
gateway can tag a read without asking the service again, and the service
compares inside the transaction that changes the record, with the row
locked: two staff saving one patient at once cannot both win.
"""
from __future__ import annotations

import hashlib
import json
import re

from common.errors import PreconditionFailed, ValidationFailed

# One entity tag ("..." or W/"...") in an If-Match list.
_TAG = re.compile(r'\s*(W/)?"([\x21\x23-\x7e]*)"\s*(?:,|$)')


def etag(answer) -> str:
    """The strong entity tag of a read's answer (quoted, as HTTP sends it)."""
    canonical = json.dumps(answer, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return '"' + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32] + '"'


def parse_if_match(header: str | None) -> list[str] | None:
    """The tags of an ``If-Match`` header, ``["*"]``, or ``None`` when the
    header is absent (the change goes ahead, as before: last write wins).
    A malformed header is refused rather than ignored."""
    if header is None:
        return None
    header = header.strip()
    if header == "*":
        return ["*"]
    tags, position = [], 0
    while position < len(header):
        match = _TAG.match(header, position)
        if match is None:
            raise ValidationFailed('If-Match must be "*" or a list of quoted entity tags from ETag',
                                   [{"field": "If-Match", "message": "malformed"}])
        # Weak tags never match for a change (RFC 9110 strong comparison).
        tags.append(("W/" if match.group(1) else "") + f'"{match.group(2)}"')
        position = match.end()
    if not tags:
        raise ValidationFailed("If-Match is empty", [{"field": "If-Match", "message": "malformed"}])
    return tags


def check_if_match(if_match, current_answer) -> None:
    """Called by a service inside the changing transaction, the record's row
    locked, with the answer its read would give now (``None``: there is
    nothing yet, which no tag, not even "*", matches)."""
    if if_match is None:
        return
    tags = [if_match] if isinstance(if_match, str) else list(if_match)
    if not tags or not all(isinstance(tag, str) for tag in tags):
        raise ValidationFailed("if_match must be an entity tag or a list of them",
                               [{"field": "if_match", "message": "must be a list of strings"}])
    if current_answer is not None and "*" in tags:
        return
    if current_answer is None or etag(current_answer) not in tags:
        raise PreconditionFailed("the record was changed by someone else since you read it; "
                                 "read it again and reapply your change")

"""``Idempotency-Key``: one behaviour for every create, in every service.

A caller that timed out cannot know whether its request took effect, so it
sends the same request again with the same key:

- same key, same request: the first answer, replayed; nothing happens twice;
- same key, a different request: ``ValidationFailed`` naming the key (422);
- the same request twice at once: the second waits for the first to commit
  and then answers as it did (if the first fails, nothing was stored and the
  second simply runs).

The key's row is written first thing in the request's own transaction with
``INSERT … ON CONFLICT DO NOTHING``. On PostgreSQL that insert waits on the
uncommitted row of a concurrent twin and only then reports the conflict, so
the twin reads the committed answer rather than racing it; SQLite has a
single writer, which serialises the two anyway. Only answers are stored: a
request refused with an error leaves no row, so the caller may fix and retry
it with the same key.

Keys are scoped by the caller (``actor``) when it is known, so two staff
members (or two systems) who happen to pick the same key do not see each
other's answers, and by the operation, so one key names one kind of request.
The fingerprint is a hash of the parsed request (trimmed, without the
defaults filled in), so a retry that differs only in whitespace is the same.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel

from common.database import insert_ignoring_duplicates
from common.errors import ValidationFailed, field_error
from common.events import utcnow

# Not part of ``plumbing_metadata``: that one is frozen into every service's
# first migration. This table is created by its own migration in each service
# that takes the header (see ``common.migrations.create_idempotency_table``).
idempotency_metadata = sa.MetaData()

KEY_MAX = 200
SCOPE_MAX = 200
_VISIBLE_ASCII = re.compile(r"^[\x21-\x7e]{1,%d}$" % KEY_MAX)

idempotency_keys = sa.Table(
    "idempotency_keys",
    idempotency_metadata,
    # "" when the caller did not say who it is (an RPC caller without actor).
    sa.Column("scope", sa.String(SCOPE_MAX), primary_key=True),
    sa.Column("operation", sa.String(60), primary_key=True),
    sa.Column("key", sa.String(KEY_MAX), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("answer", sa.JSON, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_idempotency_keys_created_at", "created_at"),
)


def checked_key(key) -> str | None:
    """The key as an RPC caller gave it: absent (``None`` or ``""``) or 1-200
    visible ASCII characters (what fits an HTTP header without escaping)."""
    if key is None or key == "":
        return None
    if not isinstance(key, str) or not _VISIBLE_ASCII.match(key):
        raise field_error("idempotency_key", f"must be 1-{KEY_MAX} visible ASCII characters")
    return key


def fingerprint(*parts: Any) -> str:
    """A stable hash of what the request asks for: its target ids and its
    parsed body. Only the fields the caller sent count, so a default filled
    in at parse time ("now") does not make a retry look different."""
    plain = [part.model_dump(mode="json", exclude_unset=True) if isinstance(part, BaseModel) else part
             for part in parts]
    return hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()


# Built once, its values bound at each call (see ``common.outbox``).
_REMEMBER = (idempotency_keys.update()
             .where(*(idempotency_keys.c[name] == sa.bindparam(f"key_{name}") for name in ("scope", "operation", "key")))
             .values(answer=sa.bindparam("answer", type_=sa.JSON)))


@dataclass
class Claim:
    """What ``claim`` found. ``replayed`` is True when ``answer`` is the
    stored first answer, which the entrypoint must return unchanged.

    A replayed answer is still a look at the patient's record, so before
    returning it the entrypoint writes the audit row its first call wrote,
    with ``_replayed`` after the action (``create_replayed``): the access log
    then shows every time the record was handed out, not only the first."""

    session: Any
    row_key: dict | None
    replayed: bool = False
    answer: Any = None

    def remember(self, answer):
        """Store the entrypoint's answer with the key, in its transaction,
        and hand the answer back (``return claim.remember(view)``)."""
        if self.row_key is not None and not self.replayed:
            self.session.execute(_REMEMBER, {**{f"key_{name}": value for name, value in self.row_key.items()},
                                             "answer": answer})
        return answer


def claim(uow, operation: str, key, *request: Any) -> Claim:
    """Reserve ``key`` for this request in the unit of work's transaction,
    or find the first answer given to it. Call it before any other write.

    ``key`` is checked here (``ValidationFailed`` on ``idempotency_key``);
    ``request`` is what identifies the request: the target ids and the
    parsed body. Without a key nothing is stored."""
    key = checked_key(key)
    session = uow.session
    if key is None:
        return Claim(session, None)
    row_key = {"scope": (uow.actor or "")[:SCOPE_MAX], "operation": operation, "key": key}
    wanted = fingerprint(*request)
    # No answer yet (SQL NULL): ``remember`` stores it before the commit.
    inserted = insert_ignoring_duplicates(session, idempotency_keys,
                                          {**row_key, "fingerprint": wanted, "created_at": utcnow()},
                                          unique=("scope", "operation", "key"))
    if inserted:
        return Claim(session, row_key)
    # A committed row (on PostgreSQL the insert above waited for a twin still
    # in flight): each statement of a READ COMMITTED transaction sees it.
    stored = session.execute(
        sa.select(idempotency_keys.c.fingerprint, idempotency_keys.c.answer)
        .where(*(idempotency_keys.c[name] == value for name, value in row_key.items()))
    ).one()
    if stored.fingerprint != wanted:
        raise ValidationFailed(
            f"Idempotency-Key {key!r} was already used for a different {operation} request; "
            "send a new key for a new request",
            [{"field": "idempotency_key", "message": f"{key!r} was already used for a different request"}],
        )
    return Claim(session, row_key, replayed=True, answer=stored.answer)

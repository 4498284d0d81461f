"""The audit trail of patient records: who read or changed one, when, and
in which chain of requests. Every service that holds patient records keeps
a ``record_access`` table of this shape in its own database."""
from __future__ import annotations

import functools
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from common.events import iso, utcnow

UNIDENTIFIED = "rpc:unidentified"


@functools.cache
def _insert_into(table: sa.Table) -> sa.Insert:
    # One statement object per table, its values bound at each call: it is
    # then compiled once, and its cache key computed once.
    return table.insert()


class RecordAccessMixin:
    """Mix into a service's declarative base: ``class RecordAccess(RecordAccessMixin, Base)``."""

    __tablename__ = "record_access"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    actor: Mapped[str] = mapped_column(sa.String(160))
    action: Mapped[str] = mapped_column(sa.String(40))
    correlation_id: Mapped[str | None] = mapped_column(sa.String(64))
    at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), default=utcnow)

    @classmethod
    def record(cls, uow, patient_id: str, action: str, **details) -> None:
        """Written in the caller's unit of work: no access without its entry.
        One plain INSERT, sent now: nothing is read back, and no object is
        left for the session to track on every read of a record."""
        uow.session.execute(_insert_into(cls.__table__), {
            "patient_id": patient_id, "actor": uow.actor or UNIDENTIFIED, "action": action,
            "correlation_id": uow.correlation_id, "at": utcnow(), **details})

    @classmethod
    def along(cls, found: sa.CTE, action: str, **details: sa.ColumnElement) -> sa.CTE:
        """The audit rows of a read, written by the statement that reads:
        one row per row of ``found`` (a CTE with a ``patient_id`` column),
        inserted by a data-modifying CTE of the same statement
        (``select(found).add_cte(RecordAccess.along(found, "read"))``).
        PostgreSQL runs such an INSERT whether or not the query reads its
        output, and a statement is atomic: its answer never comes without
        its audit rows. ``details``: further columns, as expressions over
        ``found``. Executed with ``along_parameters(uow)``."""
        columns = {"patient_id": found.c.patient_id, "actor": sa.bindparam("audit_actor", type_=sa.String),
                   "action": sa.literal(action, sa.String),
                   "correlation_id": sa.bindparam("audit_correlation_id", type_=sa.String),
                   "at": sa.bindparam("audit_at", type_=sa.DateTime(timezone=True)), **details}
        return sa.insert(cls.__table__).from_select(
            list(columns), sa.select(*columns.values())).cte(f"audit_{found.name}")

    @staticmethod
    def along_parameters(uow) -> dict:
        return {"audit_actor": uow.actor or UNIDENTIFIED, "audit_correlation_id": uow.correlation_id,
                "audit_at": utcnow()}

    @classmethod
    def trail(cls, session, patient_id: str, limit: int, offset: int) -> list[dict]:
        """Newest first."""
        rows = session.execute(
            sa.select(cls).where(cls.patient_id == patient_id).order_by(cls.id.desc()).limit(limit).offset(offset)
        ).scalars()
        return [row.view() for row in rows]

    def view(self) -> dict:
        return {"actor": self.actor, "action": self.action, "at": iso(self.at), "correlation_id": self.correlation_id}

"""The rows that belong to a record (a session's vitals readings, an
invoice's payments), declared once and read either way:

- with a query of their own (``Related.load``), anywhere;
- on PostgreSQL, nested as JSON into the statement that reads the record
  (``Related.nested``, a correlated subquery), then turned back into
  instances of their model (``Related.unpack``).

The second way saves a round trip per kind of row; the instances it gives
back are transient (in no session) but hold the same Python values a query
would have loaded, so the views that render them need not know which way
they came. PostgreSQL writes each row as its ``row_to_json`` form: column
names as keys, timestamps as ISO 8601 strings with their offset, dates as
ISO dates, numerics as JSON numbers, JSON columns as they are stored."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by


class Related:
    """The rows of ``model`` whose ``key`` equals the record's ``of``
    column, in ``order``; with ``one=True`` at most one row, or None."""

    def __init__(self, model, key: sa.orm.InstrumentedAttribute, of: sa.orm.InstrumentedAttribute,
                 *order: sa.ColumnElement, one: bool = False):
        if one and order:
            raise TypeError("a single related row has no order")
        self.model = model
        self.key = key
        self.of = of
        self.order = order
        self.one = one
        # Column name -> (attribute, type): the keys of row_to_json are
        # column names, the model's constructor takes attribute names.
        self._columns = {attribute.columns[0].name: (attribute.key, attribute.columns[0].type)
                         for attribute in sa.inspect(model).column_attrs}
        for name, (_, type_) in self._columns.items():
            if isinstance(type_, sa.Numeric) and type_.asdecimal:
                # A JSON number arrives as a float: its trailing zeros, the
                # scale a Decimal would carry, are lost on the way.
                raise TypeError(f"{model.__name__}.{name}: a Decimal column cannot be nested as JSON")
        self._by_primary_key = one and list(sa.inspect(model).primary_key) == list(key.property.columns)

    def load(self, session, record):
        """The related rows of ``record``, by a query of their own."""
        value = getattr(record, self.of.key)
        if self._by_primary_key:  # the session may hold it already
            return session.get(self.model, value)
        found = session.execute(sa.select(self.model).where(self.key == value).order_by(*self.order)).scalars()
        return found.one_or_none() if self.one else list(found)

    def nested(self, name: str) -> sa.Label:
        """PostgreSQL only: a column named ``name`` of the statement that
        reads the record, holding its related rows as a JSON array (with
        ``one``: an object or null)."""
        table = self.model.__table__
        row = table.table_valued()
        if self.one:
            found = sa.func.row_to_json(row)
        else:
            rows = sa.func.json_agg(aggregate_order_by(row, *self.order) if self.order else row)
            found = sa.func.coalesce(rows, sa.literal_column("'[]'::json"))
        return sa.select(found).select_from(table).where(self.key == self.of).scalar_subquery().label(name)

    def unpack(self, nested: Any):
        """The model's instances from what ``nested`` read (decoded JSON)."""
        if self.one:
            return None if nested is None else self._instance(nested)
        return [self._instance(row) for row in nested]

    def _instance(self, row: dict):
        return self.model(**{key: _loaded(type_, row[name]) for name, (key, type_) in self._columns.items()})


class Parts:
    """A record's related rows by name, each a ``Related``: what a view of
    the record shows besides the record itself."""

    def __init__(self, **parts: Related):
        self._parts = parts

    def __getitem__(self, name: str) -> Related:
        return self._parts[name]

    def load(self, session, record) -> dict[str, Any]:
        """Each part of ``record`` by a query of its own."""
        return {name: part.load(session, record) for name, part in self._parts.items()}

    def nested(self) -> list[sa.Label]:
        """PostgreSQL only: the columns to add to the statement that reads
        the record; ``unpack`` its row."""
        return [part.nested(name) for name, part in self._parts.items()]

    def unpack(self, row) -> dict[str, Any]:
        return {name: part.unpack(getattr(row, name)) for name, part in self._parts.items()}


def _loaded(type_: sa.types.TypeEngine, value: Any) -> Any:
    """A JSON value as the column's type would have loaded it."""
    if value is None:
        return None
    if isinstance(type_, sa.DateTime):
        return datetime.fromisoformat(value)
    if isinstance(type_, sa.Date):
        return date.fromisoformat(value)
    if isinstance(type_, sa.Numeric):
        return float(value)  # a whole number arrives as an int
    return value


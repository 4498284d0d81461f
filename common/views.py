"""Output models: the shapes the services answer, declared once so the
gateway's OpenAPI document can describe every response and a UI team can
generate a typed client from it.

The services build their answers as dicts (the ``*_view`` functions next to
these models in each ``schemas.py``); tests validate real answers against
the models. Extra keys are not forbidden here: an answer may grow a field
before the model is updated without breaking a caller, but a field the model
lists must be there with its type.
"""
from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class View(BaseModel):
    model_config = ConfigDict(extra="allow")


class Page(View, Generic[T]):
    """The shape of every paginated list: one page of ``items`` of
    ``total``, from ``offset``, at most ``limit`` long."""

    items: list[T]
    total: int = Field(description="how many match, over every page")
    limit: int
    offset: int


class ItemList(View, Generic[T]):
    """The shape of every list that is not paginated (small by nature: a
    patient's consents, a plan's appointments)."""

    items: list[T]


class AccessEntry(View):
    """One entry of a service's audit trail of a patient's record."""

    actor: str = Field(description='who: "user (role)" from the gateway, or the calling system')
    action: str
    at: datetime
    correlation_id: str | None

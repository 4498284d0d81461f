"""Chairs and clinicians: the resources a visit books."""
from __future__ import annotations

import sqlalchemy as sa

from common import idempotency
from common.handlers import rpc
from common.validation import parse
from services.sessions import schemas
from services.sessions.capabilities.chart import Chart, flush_or_conflict
from services.sessions.models import Resource
from services.sessions.schemas import resource_view


class Resources(Chart):

    @rpc
    def add_resource(self, resource, idempotency_key=None):
        given = parse(schemas.ResourceInput, resource)
        with self.db.unit_of_work() as uow:
            claim = idempotency.claim(uow, "add_resource", idempotency_key, given)
            if claim.replayed:
                return claim.answer
            record = Resource(kind=given.kind, name=given.name)
            uow.session.add(record)
            flush_or_conflict(uow.session, f"a {given.kind} named {given.name!r} already exists")
            return claim.remember(resource_view(record))

    @rpc
    def list_resources(self, kind=None):
        with self.db.read() as session:
            query = sa.select(Resource).where(Resource.active.is_(True))
            if kind:
                query = query.where(Resource.kind == kind)
            return [resource_view(r) for r in session.execute(query.order_by(Resource.kind, Resource.name)).scalars()]

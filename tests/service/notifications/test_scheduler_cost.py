"""The delivery sweep reads the messages due, not the whole table: with
thousands of future and finished messages stored, PostgreSQL answers it
from the (status, due_at) index and touches only the due rows."""
import json
import uuid
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from services.notifications.models import Message
from services.notifications.capabilities.delivery import due_messages


def test_the_sweep_touches_only_due_rows(clean_databases):
    engine = clean_databases.engine("notifications")
    now = datetime.now(timezone.utc)

    def rows(count, status, due_at):
        return [{"notification_id": str(uuid.uuid4()), "dedupe_key": str(uuid.uuid4()), "kind": "appointment_reminder",
                 "channel": "email", "recipient": "patient", "context": {}, "urgent": False, "status": status,
                 "due_at": due_at + timedelta(seconds=i), "attempts": 0, "created_at": now, "updated_at": now}
                for i in range(count)]

    with engine.begin() as connection:
        connection.execute(sa.insert(Message.__table__), rows(4000, "queued", now + timedelta(days=2)))
        connection.execute(sa.insert(Message.__table__), rows(4000, "sent", now - timedelta(days=30)))
        connection.execute(sa.insert(Message.__table__), rows(3, "queued", now - timedelta(minutes=1)))
        connection.execute(sa.insert(Message.__table__), rows(2, "retrying", now - timedelta(seconds=30)))
        connection.execute(sa.text("ANALYZE messages"))
        query = due_messages(now + timedelta(seconds=5), 50)
        sql = str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
        [[plan]] = connection.execute(sa.text("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)).all()
        assert len(connection.execute(query).all()) == 5
    plan = plan if isinstance(plan, list) else json.loads(plan)

    def nodes(node):
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    every = list(nodes(plan[0]["Plan"]))
    assert not [n for n in every if n["Node Type"] == "Seq Scan"], every
    assert {n["Index Name"] for n in every if "Index Name" in n} == {"ix_messages_due"}
    heap = [n for n in every if n.get("Relation Name") == "messages"]
    assert sum(n["Actual Rows"] + n.get("Rows Removed by Filter", 0) for n in heap) <= 5

"""How many statements the hot paths send to PostgreSQL: counts, not times,
so that a pre-ping, a SELECT before an INSERT or a per-row insert cannot
creep back unnoticed. (BEGIN and COMMIT are not cursor statements: each
unit of work adds those two round trips to the counts below.)"""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from nameko.testing.services import entrypoint_hook, entrypoint_waiter

from common.database import Database
from common.events import envelope
from services.billing.service import BillingService
from services.intake.service import IntakeService
from services.sessions.service import SessionsService

from tests.support.billing import completed_session, new_id, publish, registered_patient, wait_until
from tests.support.calls import as_staff
from tests.support.events import publish_event
from tests.support.intake import PATIENT
from tests.support.sessions import (
    CHECKLIST, CLINICIAN, IV_PLAN, approval_data, clinic_monday, clinic_time, iso, move_to_today,
)


class Statements:
    """Every statement a container's database engine sends."""

    def __init__(self, container):
        [database] = [ext for ext in container.extensions if isinstance(ext, Database)]
        self.database = database
        self.engine = database.engine
        self.reading_engine = database.reading_engine
        self.sent: list[str] = []
        self.full: list[str] = []
        # BEGIN and COMMIT are not cursor statements; counted apart. The
        # reading engine's connections are in autocommit: their "commits"
        # send nothing.
        self.transactions = 0
        sa.event.listen(database.engine, "commit", self._committed)
        for engine in (database.engine, database.reading_engine):
            sa.event.listen(engine, "before_cursor_execute", self._record)
        # The pool's pre-ping bypasses the cursor events.
        ping = self.engine.dialect.do_ping

        def counted_ping(dbapi_connection):
            self.sent.append("SELECT 1 (pre-ping)")
            return ping(dbapi_connection)

        self.engine.dialect.do_ping = counted_ping

    def _record(self, _conn, _cursor, statement, _params, _context, _executemany):
        self.sent.append(" ".join(statement.split())[:60])
        self.full.append(statement)

    def _committed(self, _conn):
        self.transactions += 1

    @property
    def round_trips(self) -> int:
        """Statements, and each transaction's BEGIN and COMMIT."""
        return len(self.sent) + 2 * self.transactions

    def clear(self):
        self.sent.clear()
        self.full.clear()
        self.transactions = 0


def audit_rows(databases, service: str, patient_id: str) -> list[str]:
    with databases.engine(service).connect() as connection:
        return list(connection.execute(sa.text(
            "SELECT action FROM record_access WHERE patient_id = :p ORDER BY id"), {"p": patient_id}).scalars())


@pytest.fixture
def intake(start_service):
    # The relay timer's own reads would be counted too.
    return start_service(IntakeService, OUTBOX_RELAY_INTERVAL=3600)


def test_reading_a_patient_is_one_statement_with_its_audit_row(intake, databases):
    call = as_staff(intake, "frontdesk (front_desk)")
    patient_id = call("register_patient", PATIENT)["patient_id"]
    statements = Statements(intake)
    for _ in range(3):
        statements.clear()
        assert call("get_patient", patient_id)["patient_id"] == patient_id
        # The patient, the consents and the audit row in one statement, in
        # autocommit: no BEGIN or COMMIT either, so one round trip in all.
        assert len(statements.sent) == 1, statements.sent
        assert statements.transactions == 0
        assert not any(sent.upper().startswith("SELECT 1") for sent in statements.sent)
    assert audit_rows(databases, "intake", patient_id) == ["create", "read", "read", "read"]


def test_registering_a_patient_sends_four_statements_in_one_transaction(start_service, databases, events):
    intake = start_service(IntakeService, OUTBOX_RELAY_INTERVAL=3600, OUTBOX_MARK_INTERVAL=3600)
    call = as_staff(intake, "frontdesk (front_desk)")
    events.listen("intake")
    statements = Statements(intake)
    for attempt in range(3):
        statements.clear()
        patient = call("register_patient", {**PATIENT, "given_name": f"Round{attempt}"},
                       idempotency_key=f"round-trips-{attempt}")
        # The Idempotency-Key claimed; the patient, its intake case and its
        # audit row (one statement); the outbox row; the answer kept with
        # the key. The event is published after the answer, and its row
        # marked sent later, with others.
        assert [sent.split()[0:3] for sent in statements.sent] == [
            ["INSERT", "INTO", "idempotency_keys"], ["WITH", "new_patient", "AS"], ["INSERT", "INTO", "outbox"],
            ["UPDATE", "idempotency_keys", "SET"]], statements.sent
        assert statements.transactions == 1
        assert audit_rows(databases, "intake", patient["patient_id"]) == ["create"]
        events.wait_for("patient.registered", lambda event: event["data"]["patient_id"] == patient["patient_id"])
    wait_until(lambda: len(statements.database.sent_marks) == 3)
    statements.clear()
    statements.database.flush_sent_marks()
    # The three published rows marked sent by one UPDATE (autocommit).
    assert [sent.split()[0:2] for sent in statements.sent] == [["UPDATE", "outbox"]]
    with databases.engine("intake").connect() as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")).scalar_one() == 0


def test_reading_a_session_record_is_one_statement_with_its_audit_row(start_service, databases):
    sessions = start_service(SessionsService, OUTBOX_RELAY_INTERVAL=3600)
    call = as_staff(sessions, CLINICIAN)
    approval = approval_data()
    with entrypoint_waiter(sessions, "on_intake_approved", timeout=10):
        publish_event(sessions.config["AMQP_URI"], "intake", "intake.approved", approval)
    chair = call("add_resource", {"kind": "chair", "name": "Chair 1"})["resource_id"]
    clinician = call("add_resource", {"kind": "clinician", "name": "Dr A"})["resource_id"]
    plan = call("create_plan", {"patient_id": approval["patient_id"], **IV_PLAN})
    appointment = call("book_appointment", {"plan_id": plan["plan_id"], "chair_id": chair, "clinician_id": clinician,
                                            "starts_at": iso(clinic_time(clinic_monday(), 9))})
    move_to_today(databases.engine("sessions"), appointment["appointment_id"])
    session_id = call("check_in", appointment["appointment_id"], CHECKLIST)["session_id"]
    statements = Statements(sessions)
    for _ in range(3):
        statements.clear()
        assert call("get_session", session_id)["session_id"] == session_id
        # The record, its vitals, side effects, addenda, monitoring form and
        # appointment (the patient's pre-visit confirmation) and its audit
        # row in one statement, in autocommit: one round trip in all.
        assert len(statements.sent) == 1, statements.sent
        assert statements.sent[0].startswith("WITH found AS")
        assert statements.transactions == 0
    assert audit_rows(databases, "sessions", approval["patient_id"]).count("session_read") == 3


def test_a_connection_the_server_closed_costs_no_request(intake, databases):
    """What a database restart does to the pool: every idle connection is
    terminated by the server. The next checkout notices without a round
    trip and opens a new connection."""
    call = as_staff(intake, "frontdesk (front_desk)")
    patient_id = call("register_patient", PATIENT)["patient_id"]
    call("get_patient", patient_id)
    database_name = sa.engine.make_url(databases["intake"]).database
    with databases.admin.connect() as connection:
        terminated = connection.execute(sa.text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = :name AND pid <> pg_backend_pid() AND state = 'idle'"), {"name": database_name})
        assert terminated.scalar_one() >= 1
    for _ in range(12):  # more than the pool holds idle
        assert call("get_patient", patient_id)["patient_id"] == patient_id


def test_a_completed_session_is_charged_in_few_statements(start_service, databases):
    billing = start_service(BillingService, OUTBOX_RELAY_INTERVAL=3600)
    statements = Statements(billing)

    def charged(patient_id):
        with databases.engine("billing").connect() as connection:
            return connection.execute(sa.text("SELECT count(*) FROM charges WHERE patient_id = :p"),
                                      {"p": patient_id}).scalar_one()

    for attempt in range(3):
        patient_id = new_id()
        statements.clear()
        publish(billing.config, "sessions", "session.completed", completed_session(patient_id))
        wait_until(lambda: charged(patient_id))
        if attempt == 0:
            continue  # the fee schedule is read once, on first use
        # The claim, the session not yet charged, a package that covers it,
        # the charges (one multi-row insert), no late-cancellation fee to void.
        assert len(statements.sent) == 5, statements.sent
        assert statements.sent[0].startswith("INSERT INTO processed_events")
        assert sum(sent.startswith("INSERT INTO charges") for sent in statements.sent) == 1
        assert charged(patient_id) >= 2


@pytest.mark.parametrize("service_cls, copy_table", [(SessionsService, "patient_eligibility"),
                                                     (BillingService, "patients")])
def test_a_registered_patient_is_copied_by_its_claim_and_one_upsert(start_service, service_cls, copy_table):
    container = start_service(service_cls, OUTBOX_RELAY_INTERVAL=3600)
    statements = Statements(container)
    for _ in range(2):
        statements.clear()
        with entrypoint_waiter(container, "on_patient_registered", timeout=10):
            publish(container.config, "intake", "patient.registered", registered_patient(new_id()))
        # The event's claim, then the copy inserted or, if newer, updated:
        # nothing read or locked first.
        assert [" ".join(sent.split()[:3]) for sent in statements.sent] == [
            "INSERT INTO processed_events", f"INSERT INTO {copy_table}"
        ], statements.sent
        assert "ON CONFLICT" in statements.full[-1]
        assert statements.transactions == 1


def test_reading_an_invoice_is_one_statement_with_its_audit_row(start_service, databases):
    billing = start_service(BillingService, OUTBOX_RELAY_INTERVAL=3600)
    call = as_staff(billing, "biller (billing)")
    patient_id = new_id()
    publish(billing.config, "sessions", "session.completed", completed_session(patient_id))
    wait_until(lambda: call("list_charges", patient_id)["total"] > 0)
    invoice_id = call("issue_invoice", patient_id)["invoice_id"]
    statements = Statements(billing)
    for _ in range(3):
        statements.clear()
        assert call("get_invoice", invoice_id)["invoice_id"] == invoice_id
        # The invoice, its lines, payments and refunds and its audit row in
        # one statement, in autocommit: one round trip in all.
        assert len(statements.sent) == 1, statements.sent
        assert statements.sent[0].startswith("WITH found AS")
        assert statements.transactions == 0
    assert audit_rows(databases, "billing", patient_id).count("read_invoice") == 3


def charged_sessions(databases, patient_ids) -> int:
    return _count(databases, "count(DISTINCT session_id)", patient_ids)


def charge_count(databases, patient_ids) -> int:
    return _count(databases, "count(*)", patient_ids)


def _count(databases, what: str, patient_ids) -> int:
    with databases.engine("billing").connect() as connection:
        return connection.execute(sa.text(f"SELECT {what} FROM charges WHERE patient_id IN :ids")
                                  .bindparams(sa.bindparam("ids", expanding=True)), {"ids": list(patient_ids)}
                                  ).scalar_one()


def test_a_batch_of_completed_sessions_costs_under_four_round_trips_an_event(start_service, databases):
    billing = start_service(BillingService, OUTBOX_RELAY_INTERVAL=3600)
    first = new_id()
    publish(billing.config, "sessions", "session.completed", completed_session(first))
    wait_until(lambda: charged_sessions(databases, [first]))  # the fee schedule is read on first use
    statements = Statements(billing)
    patient_ids = [new_id() for _ in range(20)]
    bodies = [envelope("session.completed", completed_session(patient_id), producer="sessions")
              for patient_id in patient_ids]
    # What the entrypoint hands one worker when 20 events are waiting.
    with entrypoint_hook(billing, "on_session_completed") as handle:
        handle(batch=bodies)
    assert charged_sessions(databases, patient_ids) == 20
    charges = charge_count(databases, patient_ids)
    # BEGIN, one claim for all, the sessions already charged, the packages
    # that cover them, every charge in one INSERT, the appointment fees to
    # void, COMMIT.
    assert statements.transactions == 1
    assert sum(sent.startswith("INSERT INTO processed_events") for sent in statements.sent) == 1
    assert sum(sent.startswith("INSERT INTO charges") for sent in statements.sent) == 1
    assert statements.round_trips / len(bodies) <= 4, statements.sent
    # Delivered again (a crash between the commit and the acks): no second effect.
    statements.clear()
    with entrypoint_hook(billing, "on_session_completed") as handle:
        handle(batch=bodies)
    assert not any(sent.startswith("INSERT INTO charges") for sent in statements.sent)
    assert charge_count(databases, patient_ids) == charges


def test_a_lost_connection_the_checkout_missed_costs_no_request_either(intake, databases):
    """The checkout's look at the socket can miss a connection lost a moment
    later: the transaction's first statement is then sent again, once, on a
    new connection."""
    from common import engines as db_module

    call = as_staff(intake, "frontdesk (front_desk)")
    patient_id = call("register_patient", PATIENT)["patient_id"]
    statements = Statements(intake)
    engines = (statements.engine, statements.reading_engine)
    for engine in engines:
        sa.event.remove(engine, "checkout", db_module._discard_if_closed_by_server)
    try:
        call("get_patient", patient_id)
        database_name = sa.engine.make_url(databases["intake"]).database
        with databases.admin.connect() as connection:
            connection.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid() AND state = 'idle'"), {"name": database_name})
        for _ in range(12):
            assert call("get_patient", patient_id)["patient_id"] == patient_id
    finally:
        for engine in engines:
            sa.event.listen(engine, "checkout", db_module._discard_if_closed_by_server)

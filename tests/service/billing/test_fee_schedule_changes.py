"""A new price reaches every billing process through ``fee_schedule.changed``,
not through the timed refresh (an hour by default): the process that
stores it announces it, and each running process drops the prices it
keeps."""
from __future__ import annotations

import yaml

from services.billing.dependencies import DEFAULT_FEE_SCHEDULE
from services.billing.service import BillingService
from tests.support.billing import new_id, rpc_caller, scalar, wait_until


def test_a_replica_started_with_a_new_price_makes_the_running_ones_use_it(start_service, databases, tmp_path):
    running = start_service(BillingService)
    call = rpc_caller(running)
    patient_id = new_id()
    visit = {"code": "99214", "date_of_service": "2026-11-20"}
    assert call("add_charge", patient_id, visit)["amount_cents"] == 22000  # and the prices are kept

    schedule = yaml.safe_load(DEFAULT_FEE_SCHEDULE.read_text())
    [fee] = [fee for fee in schedule["fees"] if fee["code"] == "99214"]
    fee["prices"].append({"effective_from": "2026-11-01", "price_cents": 23500})
    path = tmp_path / "fee_schedule.yaml"
    path.write_text(yaml.safe_dump(schedule))
    starting = start_service(BillingService, BILLING={"FEE_SCHEDULE_PATH": str(path)})
    wait_until(lambda: scalar(databases, "SELECT count(*) FROM outbox WHERE event_type = 'fee_schedule.changed'"
                                         " AND sent_at IS NOT NULL"))
    starting.stop()  # every call below reaches the process that kept the old prices

    wait_until(lambda: call("add_charge", patient_id, visit)["amount_cents"] == 23500)
    # One announcement per start that stored prices: the first stored the whole file.
    assert scalar(databases, "SELECT count(*) FROM outbox WHERE event_type = 'fee_schedule.changed'") == 2

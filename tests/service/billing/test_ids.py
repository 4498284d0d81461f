"""An id longer than any stored id (a UUID, 36 characters) is refused as
bad input naming the argument, before billing writes anything with it:
PostgreSQL would otherwise refuse the row and the caller get a server error."""
from datetime import date

import pytest

from common.errors import ValidationFailed
from services.billing.service import BillingService
from tests.support.billing import rpc_caller, scalar

TOO_LONG = "p" * 37


@pytest.fixture
def call(start_service):
    return rpc_caller(start_service(BillingService))


@pytest.mark.parametrize("method, args", [
    ("add_charge", (TOO_LONG, {"code": "99214", "date_of_service": date.today().isoformat()})),
    ("sell_package", (TOO_LONG, {"code": "PKG-IV6"})),
    ("issue_invoice", (TOO_LONG, {})),
    ("get_balance", (TOO_LONG,)),
    ("list_charges", (TOO_LONG,)),
    ("get_invoice", ("i" * 40,)),
    ("list_record_access", (TOO_LONG,)),
])
def test_an_id_too_long_to_be_one_is_refused(call, databases, method, args):
    with pytest.raises(ValidationFailed) as caught:
        call(method, *args)
    assert caught.value.details[0]["field"].endswith("_id")
    assert scalar(databases, "SELECT count(*) FROM charges") == 0
    assert scalar(databases, "SELECT count(*) FROM record_access") == 0

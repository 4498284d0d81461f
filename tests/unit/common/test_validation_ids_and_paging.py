"""The one id check and the one paging check every service's RPC methods use."""
import pytest

from common.errors import ValidationFailed
from common.validation import paging, require_id


@pytest.mark.parametrize("value, expected", [
    ("p-1", "p-1"), ("  3f1c2e9a-0b7d-4c41-9a53-2f8e6d1b7c40 ", "3f1c2e9a-0b7d-4c41-9a53-2f8e6d1b7c40"),
    ("x" * 36, "x" * 36),
])
def test_an_id_is_trimmed(value, expected):
    assert require_id(value, "patient_id") == expected


@pytest.mark.parametrize("value", [None, "", "   ", 42, ["p-1"], {"id": "p-1"}, "x" * 37, "x" * 64])
def test_anything_else_is_refused_naming_the_field(value):
    with pytest.raises(ValidationFailed) as caught:
        require_id(value, "invoice_id")
    assert caught.value.details == [{"field": "invoice_id", "message": "must be a non-empty id"}]


def test_paging_takes_whole_numbers_given_as_text():
    assert paging("20", "40") == (20, 40)
    assert paging(500, 0) == (500, 0)


@pytest.mark.parametrize("limit, offset, fields", [
    (0, 0, ["limit"]), (501, 0, ["limit"]), ("ten", 0, ["limit"]), (None, 0, ["limit"]),
    (10, -1, ["offset"]), (10, "x", ["offset"]), (0, -1, ["limit", "offset"]),
])
def test_bad_paging_names_each_bad_field(limit, offset, fields):
    with pytest.raises(ValidationFailed) as caught:
        paging(limit, offset)
    assert [d["field"] for d in caught.value.details] == fields


def test_a_service_may_set_a_lower_ceiling():
    assert paging(200, 0, most=200) == (200, 0)
    with pytest.raises(ValidationFailed) as caught:
        paging(201, 0, most=200)
    assert caught.value.details == [{"field": "limit", "message": "must be between 1 and 200"}]

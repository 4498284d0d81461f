"""The one money formatter: superbills and patient messages print amounts
the same way."""
import pytest

from common.money import money


@pytest.mark.parametrize("cents, currency, text", [
    (45000, "USD", "$450.00"), (5, "usd", "$0.05"), (123456789, "EUR", "€1,234,567.89"),
    (-1500, "USD", "-$15.00"), (100, "CHF", "1.00 CHF"), (250000, "CAD", "CA$2,500.00"), (999, "GBP", "£9.99"),
])
def test_an_amount_with_its_currency(cents, currency, text):
    assert money(cents, currency) == text


@pytest.mark.parametrize("cents, text", [(0, "0.00"), (123456, "1,234.56"), (-99, "-0.99")])
def test_a_bare_amount_where_the_document_states_the_currency_once(cents, text):
    assert money(cents) == text
    assert money(cents, "") == text


def test_no_amount_prints_nothing():
    assert money(None, "USD") == ""

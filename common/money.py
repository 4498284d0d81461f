"""Amounts as people read them on a statement or in a message; the clinic
stores and sends integer cents."""
from __future__ import annotations

SYMBOLS = {"USD": "$", "CAD": "CA$", "EUR": "€", "GBP": "£"}


def money(cents: int | None, currency: str | None = None) -> str:
    """``money(45000, "USD")`` is ``$450.00``; a currency without a known
    symbol follows the amount (``450.00 CHF``); without a currency the bare
    amount (``450.00``), for a document whose currency is stated once."""
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    cents = abs(int(cents))
    amount = f"{cents // 100:,}.{cents % 100:02d}"
    symbol = SYMBOLS.get((currency or "").upper())
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{amount} {currency or ''}".strip()

"""Money is integer cents. This is the one place that turns cents into text."""

from __future__ import annotations


def format_cents(cents: int, currency: str = "$") -> str:
    """``-1234`` -> ``"-12.34 $"``."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(int(cents)), 100)
    return f"{sign}{whole}.{part:02d} {currency}"

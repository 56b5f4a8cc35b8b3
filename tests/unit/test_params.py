"""Parameters the services share: business days, public ids, white space."""

from __future__ import annotations

import re
import sys
from datetime import date

import pytest

from ates.platform.params import DAY_PATTERN, LAST_DAY, is_uuid, parse_day
from ates.platform.text import WHITESPACE


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "'0' is not a date (YYYY-MM-DD)"),  # pydantic alone takes it for 1970-01-01
        ("20260302", "'20260302' is not a date (YYYY-MM-DD)"),
        ("2026-02-30", "'2026-02-30' is not a date (YYYY-MM-DD)"),
        ("2026-03-02\n", "is not a date"),
        ("0001-01-06", "0001-01-06 is not between 1970-01-01 and 9998-12-31"),
        ("9999-12-31", "9999-12-31 is not between 1970-01-01 and 9998-12-31"),
        (7, "must be a date (YYYY-MM-DD)"),
    ],
)
def test_a_bad_day_says_what_a_day_is(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_day(value)


def test_the_documented_pattern_is_the_rule() -> None:
    assert parse_day("1970-01-01") == date(1970, 1, 1)
    assert parse_day("9998-12-31") == LAST_DAY
    for year in range(1, 10_000):
        text = f"{year:04d}-06-15"
        try:
            parse_day(text)
            accepted = True
        except ValueError:
            accepted = False
        assert accepted == bool(re.fullmatch(DAY_PATTERN.strip("^$"), text)), text


def test_a_public_id_is_a_uuid_in_its_usual_form() -> None:
    assert is_uuid("0b1c5e9a-5c1e-4c3b-9f7e-2f1a7d0c9b11")
    assert not is_uuid("0b1c5e9a5c1e4c3b9f7e2f1a7d0c9b11")
    assert not is_uuid("0b1c5e9a-5c1e-4c3b-9f7e-2f1a7d0c9b11\n")
    assert not is_uuid("\x00")


def test_whitespace_is_exactly_what_python_strips() -> None:
    pattern = re.compile(f"[{WHITESPACE}]")
    assert all(
        (pattern.fullmatch(chr(c)) is not None) == chr(c).isspace()
        for c in range(sys.maxunicode + 1)
    )

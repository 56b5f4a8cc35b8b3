"""Request parameters the services share: a business day.

A day is written ``YYYY-MM-DD`` (an integer is not a date, though pydantic would take it
as a Unix time) and lies between 1970 and 9998: every day, week, month and time-zone
conversion the services compute around it then stays inside Python's calendar (year 1
to 9999), and the OpenAPI documents say so in a pattern.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated

from pydantic import BeforeValidator, WithJsonSchema

FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(9998, 12, 31)
_YEAR = r"(19[7-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])"
DAY_PATTERN = rf"^{_YEAR}-[0-9]{{2}}-[0-9]{{2}}$"
_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_HEX = "[0-9a-fA-F]"
_UUID = re.compile(f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}")
UUID_PATTERN = f"^{_UUID.pattern}$"


def parse_day(value: object) -> date:
    """A day from ``YYYY-MM-DD``, or ValueError saying what a day must be."""
    if isinstance(value, date):
        day = value
    elif not isinstance(value, str):
        raise ValueError("must be a date (YYYY-MM-DD)")
    else:
        try:
            if not _SHAPE.fullmatch(value):
                raise ValueError
            day = date.fromisoformat(value)
        except ValueError as error:
            raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from error
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"{day.isoformat()} is not between {FIRST_DAY} and {LAST_DAY}")
    return day


Day = Annotated[
    date,
    BeforeValidator(parse_day),
    WithJsonSchema({"type": "string", "format": "date", "pattern": DAY_PATTERN}),
]


def is_uuid(value: str) -> bool:
    """Whether ``value`` can be a public id: a UUID in its usual form (every public id is
    ``str(uuid4())``). Anything else is unknown without asking the database, which may
    refuse it (a NUL on PostgreSQL)."""
    return _UUID.fullmatch(value) is not None

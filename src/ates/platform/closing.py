"""The words both money dashboards use about closed days, so billing and analytics say
the same thing about the same day (billing decides; analytics hears ``DayClosed``).

A day is *closed* once billing has closed it (a ``closed_days`` row there, a
``DayClosed`` event for everyone else). Days before the books' first close were never
closed on their own: they held no movement, and both dashboards show them as such, not
as closed. When today has been closed early, whatever happens later today is booked on
the first open day; both dashboards explain it with :func:`late_booking_note`.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

from ates.platform.dates import format_day

DayState = Literal["closed", "open", "before"]


def day_state(day: date, *, closed: bool, last_closed: date | None) -> DayState:
    """``closed``; ``before`` (a day up to the last close that was never closed: the
    books began after it); or ``open``."""
    if closed:
        return "closed"
    if last_closed is not None and day <= last_closed:
        return "before"
    return "open"


def late_booking_note(last_closed: date | None, today: date) -> str | None:
    """Said on both dashboards while today is already closed: where later movements go."""
    if last_closed is None or last_closed < today:
        return None
    first_open = last_closed + timedelta(days=1)
    return (
        f"{format_day(today)} is already closed. Money that moves from now on is booked "
        f"on {format_day(first_open)}, the first open day, and counted there; its audit "
        f"entry says on which day it happened."
    )

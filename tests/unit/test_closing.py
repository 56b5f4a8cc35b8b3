from __future__ import annotations

from datetime import date

from ates.platform.closing import day_state, late_booking_note

TODAY = date(2026, 11, 26)


def test_a_day_is_closed_open_or_before_the_books() -> None:
    last = date(2026, 11, 25)
    assert day_state(last, closed=True, last_closed=last) == "closed"
    assert day_state(date(2026, 11, 20), closed=False, last_closed=last) == "before"
    assert day_state(TODAY, closed=False, last_closed=last) == "open"
    assert day_state(TODAY, closed=False, last_closed=None) == "open"


def test_where_late_movements_go_is_said_only_once_today_is_closed() -> None:
    assert late_booking_note(None, TODAY) is None
    assert late_booking_note(date(2026, 11, 25), TODAY) is None
    note = late_booking_note(TODAY, TODAY)
    assert note is not None
    assert note.startswith("26.11.2026 is already closed.")
    assert "booked on 27.11.2026, the first open day" in note

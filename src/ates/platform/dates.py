"""How the pages write days and times: one format everywhere, in the business time zone.

A day is written the way the design writes it (``26.11.2026``), a time as ``14:05``; every
page says once, in its footer, which zone its times are in, so no time carries a zone of
its own. Inside, time stays timezone-aware UTC (STYLE habit 9): these run at the edge,
as does ``today``, the business day a request means when it names none.
"""

from __future__ import annotations

import re
from datetime import date, datetime, tzinfo

from ates.platform.params import parse_day

DAY = "%d.%m.%Y"
CLOCK = "%H:%M"


def today(zone: tzinfo) -> date:
    """The business day it is now: midnight to midnight in ``zone``."""
    return datetime.now(zone).date()


def format_day(day: date) -> str:
    """``date(2026, 11, 26)`` -> ``"26.11.2026"``."""
    return day.strftime(DAY)


def format_clock(moment: datetime, zone: tzinfo) -> str:
    """The time of day of an aware instant in ``zone``: ``"14:05"``."""
    return _local(moment, zone).strftime(CLOCK)


def format_moment(moment: datetime, zone: tzinfo) -> str:
    """An aware instant as a day and a time in ``zone``: ``"26.11.2026 14:05"``."""
    return _local(moment, zone).strftime(f"{DAY} {CLOCK}")


def _local(moment: datetime, zone: tzinfo) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no place on a page: times are aware UTC")
    return moment.astimezone(zone)


_TYPED = re.compile(r"([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{4})")
# what a page's day field takes: the pages' own format, or ISO (as links write it)
DAY_FIELD_PATTERN = r"[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{4}|[0-9]{4}-[0-9]{2}-[0-9]{2}"


def parse_page_day(text: str) -> date:
    """A day typed into a page, written as pages write it (``26.11.2026``) or as links
    carry it (``2026-11-26``); ValueError saying how to write one otherwise. (Text
    fields, not the browser's date picker, which writes days in the browser's own way.)"""
    text = text.strip()
    typed = _TYPED.fullmatch(text)
    if typed is None:
        try:
            return parse_day(text)
        except ValueError as error:
            raise ValueError(f"{text!r} is not a day (write it like 26.11.2026)") from error
    try:
        day = date(int(typed[3]), int(typed[2]), int(typed[1]))
    except ValueError as error:
        raise ValueError(f"{text!r} is not a day of the calendar") from error
    return parse_day(day)

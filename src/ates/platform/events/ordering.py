"""Keeping a local copy right when events arrive out of order."""

from __future__ import annotations

from datetime import datetime


def is_newer(event_time: datetime, known: datetime | None) -> bool:
    """Whether a fact stamped ``event_time`` replaces the one we hold (stamped ``known``).

    Events may arrive out of order, so each fact of a copy (a person's profile, role,
    active flag) keeps the time of the event that set it, and an older event never
    overwrites a newer fact. Equal times: the later arrival wins (a producer stamps one
    change per event)."""
    return known is None or event_time >= known

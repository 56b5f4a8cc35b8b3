"""Keeping a local copy right when events arrive out of order: one rule for every service.

Each fact of a copy (a person's profile, role, active flag; analytics' latest balance or
assignee) keeps the **stamp** of what set it, and is replaced only by a newer stamp. A stamp
orders by (occurred_at, tiebreak) — for an event, (``event_time``, ``event_id``): a total
order every service computes the same way, so two services never disagree about a person
whatever order the events reached each of them in, even when two events share an instant.

A stamp is text that sorts as that pair: the instant in UTC at a fixed width, ``|``, then
the tiebreak. One column holds it, and SQL compares it as Python does (set-based upserts
use ``excluded.stamp > stamp``). ``NEVER`` (empty) sorts before every stamp. Pure: the
standard library only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ates.platform.events.envelope import Event

NEVER = ""


def stamp(moment: datetime, tiebreak: str) -> str:
    """The stamp of a fact that became true at ``moment``; ``tiebreak`` (an event or
    transaction id) orders facts of the same instant."""
    instant = moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")
    return f"{instant}Z|{tiebreak}"  # e.g. 2026-03-03T12:00:00.000000Z|<event id>


def event_stamp(event: Event) -> str:
    """The stamp of what ``event`` says: (event_time, event_id)."""
    return stamp(event.event_time, str(event.event_id))


def is_newer(candidate: str, known: str | None) -> bool:
    """Whether a fact stamped ``candidate`` replaces the one we hold (stamped ``known``)."""
    return candidate > (known or NEVER)


def stamp_time(version: str | None) -> datetime | None:
    """The instant of a stamp (None for NEVER)."""
    if not version:
        return None
    return datetime.fromisoformat(version.split("|", 1)[0].removesuffix("Z")).replace(tzinfo=UTC)

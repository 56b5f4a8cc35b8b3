"""Upcasters: pure functions turning version N of an event's data into version N+1.

Every consumer reads the newest version it knows; older producers keep working because
their events are upcast on arrival. Registering a new version without an upcaster from the
previous one fails ``ates schemas check``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

_LEADING_JIRA_ID = re.compile(r"^\s*\[(?P<jira_id>[^\[\]]+)\]\s*(?P<title>.*)$", re.DOTALL)


def split_jira_id(title: str) -> tuple[str | None, str]:
    """``"[POPUG-42] Fix the beak"`` -> ``("POPUG-42", "Fix the beak")``."""
    match = _LEADING_JIRA_ID.match(title)
    if not match:
        return None, title
    return match["jira_id"].strip(), match["title"].strip()


def task_created_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    jira_id, title = split_jira_id(data["title"])
    return {**data, "title": title, "jira_id": jira_id}


def same_data(data: dict[str, Any]) -> dict[str, Any]:
    """A new version that only tightens what the data may hold (v2 of the billing events
    bounds their amounts): the data is unchanged; validation against the new version is
    what refuses an old event out of bounds."""
    return dict(data)


UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("TaskCreated", 1): task_created_v1_to_v2,
    ("TransactionApplied", 1): same_data,
    ("PayoutMade", 1): same_data,
}

"""The task tracker's rules (DESIGN.md §1 T3-T6), pure: no I/O, no framework.

The use cases in ``commands`` ask these functions what is allowed and what a change
looks like; they never decide it themselves.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Final

OPEN: Final = "open"
DONE: Final = "done"
STATUSES = (OPEN, DONE)
WORKER = "worker"

TITLE_MAX = 300
JIRA_ID_MAX = 64
DESCRIPTION_MAX = 10_000


class TaskRuleBroken(Exception):
    """A user asked for something the rules forbid (the message says which rule)."""


class NotTheAssignee(TaskRuleBroken):
    pass


class AlreadyDone(TaskRuleBroken):
    pass


class NoActiveWorker(TaskRuleBroken):
    pass


NO_NUL = "must not contain a NUL character"


def check_title(title: str) -> str:
    """T3: the jira id has its own field, so a title holds no ``[`` or ``]``."""
    title = title.strip()
    if not title:
        raise ValueError("must not be empty")
    if "\x00" in title:  # PostgreSQL text cannot hold it
        raise ValueError(NO_NUL)
    if len(title) > TITLE_MAX:
        raise ValueError(f"must be at most {TITLE_MAX} characters")
    if "[" in title or "]" in title:
        raise ValueError("must not contain '[' or ']': put the jira id in the jira_id field")
    return title


def check_jira_id(jira_id: str | None) -> str | None:
    """An optional ticket reference like ``POPUG-42``: one word, no brackets."""
    if jira_id is None:
        return None
    jira_id = jira_id.strip()
    if not jira_id:
        return None
    if len(jira_id) > JIRA_ID_MAX:
        raise ValueError(f"must be at most {JIRA_ID_MAX} characters")
    if any(c in "[]\x00" or c.isspace() for c in jira_id):
        raise ValueError("must be one word without '[' or ']' (like POPUG-42)")
    return jira_id


def check_description(description: str) -> str:
    if len(description) > DESCRIPTION_MAX:
        raise ValueError(f"must be at most {DESCRIPTION_MAX} characters")
    if "\x00" in description:
        raise ValueError(NO_NUL)
    return description


def check_completion(*, status: str, assignee: str, by: str) -> None:
    """T6: only the assignee completes, and only once."""
    if assignee != by:
        raise NotTheAssignee("only the assignee can complete this task")
    if status == DONE:
        raise AlreadyDone("this task is already done")


def draw_assignees(
    workers: Sequence[str], count: int, rng: random.Random | None = None
) -> list[str]:
    """T4/T5: one uniformly random active worker per task (repeats allowed)."""
    if not workers:
        raise NoActiveWorker("there is no active worker to assign the task to")
    return (rng or random).choices(workers, k=count)

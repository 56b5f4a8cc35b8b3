"""Events as the other services publish them, built from the registry's schemas (not from
their code: the tasks service is rewritten independently)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from ates.platform.events import Event, default_registry


def new_id() -> str:
    return str(uuid.uuid4())


def make(
    name: str,
    data: dict[str, Any],
    *,
    version: int | None = None,
    at: datetime | None = None,
    producer: str = "tasks",
) -> Event:
    """A valid event; ``at`` is its ``event_time`` (when it happened at the producer)."""
    registry = default_registry()
    version = version or registry.latest_version(name)
    registry.validate(name, version, data)
    return Event(
        event_name=name,
        event_version=version,
        data=data,
        producer=producer,
        event_time=at or datetime.now(UTC),
    )


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def account_created(person: str, *, name: str = "Polly Parrot", role: str = "worker") -> Event:
    return make(
        "AccountCreated",
        {
            "public_id": person,
            "username": f"u{person[:6]}",
            "email": f"{person[:6]}@example.com",
            "full_name": name,
            "role": role,
        },
        producer="auth",
    )


def task_created(
    task: str, title: str = "Sharpen the beak", jira_id: str | None = "POPUG-42", **kw: Any
) -> Event:
    return make(
        "TaskCreated",
        {"public_id": task, "title": title, "jira_id": jira_id, "description": "before lunch"},
        **kw,
    )


def task_created_v1(task: str, title: str = "[POPUG-7] Polish the perch", **kw: Any) -> Event:
    """As an older tasks service still publishes it: the jira id inside the title."""
    return make(
        "TaskCreated",
        {"public_id": task, "title": title, "description": "legacy"},
        version=1,
        **kw,
    )


def task_assigned(
    task: str,
    worker: str,
    *,
    reason: str = "created",
    previous: str | None = None,
    at: datetime | None = None,
) -> Event:
    return make(
        "TaskAssigned",
        {
            "task_public_id": task,
            "assignee_public_id": worker,
            "previous_assignee_public_id": previous,
            "reason": reason,
            "shuffle_id": new_id() if reason == "shuffle" else None,
        },
        at=at,
    )


def task_completed(task: str, worker: str, *, at: datetime | None = None) -> Event:
    moment = at or datetime.now(UTC)
    return make(
        "TaskCompleted",
        {"task_public_id": task, "assignee_public_id": worker, "completed_at": rfc3339(moment)},
        at=moment,
    )

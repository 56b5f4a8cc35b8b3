"""The typed payloads of the ``tasks`` domain, one class per schema version in
``tasks/<EventName>/<version>.json`` (see ``ates.platform.events.payload``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from ates.platform.events.payload import Payload


@dataclass(frozen=True, slots=True)
class TaskCreated(Payload):
    """v2: the jira id in a field of its own, never in the title."""

    event_name: ClassVar[str] = "TaskCreated"
    event_version: ClassVar[int] = 2

    public_id: str
    title: str
    jira_id: str | None
    description: str


@dataclass(frozen=True, slots=True)
class TaskCreatedV1(Payload):
    """Legacy: the jira id lives in the title as ``[ID] text`` (upcast to v2 on arrival)."""

    event_name: ClassVar[str] = "TaskCreated"
    event_version: ClassVar[int] = 1

    public_id: str
    title: str
    description: str


@dataclass(frozen=True, slots=True)
class TaskAssigned(Payload):
    event_name: ClassVar[str] = "TaskAssigned"
    event_version: ClassVar[int] = 1

    task_public_id: str
    assignee_public_id: str
    previous_assignee_public_id: str | None
    reason: Literal["created", "shuffle"]
    shuffle_id: str | None


@dataclass(frozen=True, slots=True)
class TaskCompleted(Payload):
    event_name: ClassVar[str] = "TaskCompleted"
    event_version: ClassVar[int] = 1

    task_public_id: str
    assignee_public_id: str
    completed_at: str  # RFC 3339 date-time


PAYLOADS: tuple[type[Payload], ...] = (TaskCreated, TaskCreatedV1, TaskAssigned, TaskCompleted)

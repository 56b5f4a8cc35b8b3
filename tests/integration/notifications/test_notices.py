"""Notifications on a real database: events in any order become messages naming the
person and the task, each sent once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ates.platform.events import Event
from ates.platform.runtime import Runtime
from ates.services.notifications.notifier import RecordingNotifier
from ates.services.notifications.sender import GRACE, send_pending
from tests.integration.tasks.helpers import person_data

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 25, 9, tzinfo=UTC)


def event(name: str, data: dict[str, Any], *, version: int = 1, at: datetime = T0) -> Event:
    producer = "tasks" if name.startswith("Task") else "billing" if name == "PayoutMade" else "auth"
    return Event(name, version, data, producer, event_time=at)


async def deliver(runtime: Runtime, item: Event) -> bool:
    """Through the consumer's real path: validate, upcast, inbox, handler, commit."""
    return await runtime.consumer().apply(runtime.registry.upcast(item))


def task_created_v2(title: str = "Sharpen the beak", jira_id: str | None = "POPUG-42") -> Event:
    return event(
        "TaskCreated",
        {"public_id": str(uuid.uuid4()), "title": title, "jira_id": jira_id, "description": ""},
        version=2,
    )


def task_assigned(task: str, person: str, reason: str = "created") -> Event:
    return event(
        "TaskAssigned",
        {
            "task_public_id": task,
            "assignee_public_id": person,
            "previous_assignee_public_id": None if reason == "created" else str(uuid.uuid4()),
            "reason": reason,
            "shuffle_id": None if reason == "created" else str(uuid.uuid4()),
        },
    )


async def test_an_assignment_is_told_on_three_channels_once(runtime: Runtime) -> None:
    polly = person_data("worker", "Polly Parrot")
    created = task_created_v2()
    await deliver(runtime, event("AccountCreated", polly))
    await deliver(runtime, created)
    assigned = task_assigned(created.data["public_id"], polly["public_id"])
    assert await deliver(runtime, assigned)
    assert not await deliver(runtime, assigned)  # a redelivery is not a second notice

    notifier = RecordingNotifier()
    assert await send_pending(runtime.uow, notifier) == 1
    assert await send_pending(runtime.uow, notifier) == 0
    name, email = "Polly Parrot", polly["email"]
    text = "Polly Parrot, the task “Sharpen the beak” (POPUG-42) is assigned to you."
    assert notifier.lines() == [
        f"[email] to {name} <{email}>: {text}",
        f"[slack] to @{polly['username']} ({name}): {text}",
        f"[sms] to {name}: {text}",
    ]


async def test_a_v1_task_created_from_an_older_producer_is_named_properly(
    runtime: Runtime,
) -> None:
    polly = person_data("worker", "Polly Parrot")
    task = str(uuid.uuid4())
    legacy = Event(
        "TaskCreated",
        1,
        {"public_id": task, "title": "[POPUG-7] Fix the perch", "description": "old producer"},
        "tasks-legacy",
    )
    await deliver(runtime, event("AccountCreated", polly))
    await deliver(runtime, legacy)
    await deliver(runtime, task_assigned(task, polly["public_id"], "shuffle"))
    notifier = RecordingNotifier()
    await send_pending(runtime.uow, notifier)
    assert notifier.sent[0].text == (
        "Polly Parrot, the task “Fix the perch” (POPUG-7) is reassigned to you by a shuffle."
    )


async def test_an_assignment_waits_for_the_person_and_the_task_to_be_known(
    runtime: Runtime,
) -> None:
    polly = person_data("worker", "Polly Parrot")
    created = task_created_v2(jira_id=None)
    await deliver(runtime, task_assigned(created.data["public_id"], polly["public_id"]))
    notifier = RecordingNotifier()
    assert await send_pending(runtime.uow, notifier) == 0  # nobody to name yet
    await deliver(runtime, event("AccountCreated", polly))
    assert await send_pending(runtime.uow, notifier) == 0  # the task is still unknown
    await deliver(runtime, created)
    assert await send_pending(runtime.uow, notifier) == 1
    assert notifier.sent[2].line() == (
        "[sms] to Polly Parrot: Polly Parrot, the task “Sharpen the beak” is assigned to you."
    )


async def test_after_the_grace_period_an_assignment_goes_out_with_ids(runtime: Runtime) -> None:
    person, task = str(uuid.uuid4()), str(uuid.uuid4())
    await deliver(runtime, task_assigned(task, person))
    notifier = RecordingNotifier()
    later = datetime.now(UTC) + GRACE + timedelta(seconds=1)
    assert await send_pending(runtime.uow, notifier, now=later) == 1
    assert notifier.sent[1].line() == (
        f"[slack] to {person}: {person}, the task task {task} is assigned to you."
    )


async def test_a_newer_profile_wins_whatever_the_order(runtime: Runtime) -> None:
    polly = person_data("worker", "Polly Parrot")
    renamed = {**polly, "full_name": "Polly Renamed", "active": True}
    await deliver(runtime, event("AccountUpdated", renamed, at=T0 + timedelta(minutes=5)))
    await deliver(runtime, event("AccountCreated", polly, at=T0))  # late and older
    created = task_created_v2()
    await deliver(runtime, created)
    await deliver(runtime, task_assigned(created.data["public_id"], polly["public_id"]))
    notifier = RecordingNotifier()
    await send_pending(runtime.uow, notifier)
    assert notifier.sent[2].recipient == "Polly Renamed"


async def test_a_payout_is_emailed_with_amount_and_day(runtime: Runtime) -> None:
    polly = person_data("worker", "Polly Parrot")
    await deliver(runtime, event("AccountCreated", polly))
    payout = {
        "owner_public_id": polly["public_id"],
        "amount_cents": 4_250,
        "business_date": "2026-11-25",
    }
    await deliver(runtime, event("PayoutMade", payout))
    notifier = RecordingNotifier()
    assert await send_pending(runtime.uow, notifier) == 1
    assert notifier.lines() == [
        f"[email] to Polly Parrot <{polly['email']}>: "
        "Polly Parrot, you were paid 42.50 $ for 2026-11-25."
    ]

"""The task flow through the real broker (bundled NATS): a person announced by auth, a task
created, assigned, shuffled and completed — seen by notifications (its stdout) and by an
independent test consumer."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import pytest
from sqlalchemy import select

from ates.config import Settings
from ates.platform.broker import Ack, Delivery, Outcome, OutgoingMessage, create_broker
from ates.platform.events import Event
from ates.services.notifications.models import Person as NoticePerson
from ates.services.tasks.models import Person as TaskPerson
from tests.integration.tasks.helpers import account_event, person_data
from tests.support import Harness, TokenFactory, eventually, service_harness

pytestmark = pytest.mark.integration


class Seen:
    """A consumer of the tasks stream that only records what arrives."""

    def __init__(self) -> None:
        self.events: dict[str, Event] = {}  # by event id: redeliveries collapse

    async def __call__(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        for delivery in deliveries:
            event = Event.from_json(delivery.body)
            self.events[str(event.event_id)] = event
        return [Ack()] * len(deliveries)

    def named(self, name: str) -> list[Event]:
        return [e for e in self.events.values() if e.event_name == name]


@asynccontextmanager
async def watching_tasks(settings: Settings) -> AsyncIterator[tuple[Seen, Any]]:
    assert settings.broker_url is not None
    broker = create_broker(settings.broker_url)
    await broker.connect()
    seen = Seen()
    names = ["TaskCreated", "TaskAssigned", "TaskCompleted"]
    consuming = asyncio.create_task(broker.consume("flow-test", "tasks", names, seen))
    try:
        yield seen, broker
    finally:
        consuming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consuming
        await broker.close()


async def _announce(broker: Any, data: dict[str, Any]) -> None:
    event = account_event("AccountCreated", data)
    await broker.publish(
        [
            OutgoingMessage(
                str(event.event_id), "accounts", event.event_name, event.to_json().encode()
            )
        ]
    )


def now(check: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
    """A plain check in the shape ``eventually`` awaits."""

    async def run() -> Any:
        return check()

    return run


async def _known(harness: Harness, model: Any, public_id: str) -> bool:
    async with harness.db.reader() as session:
        return (
            await session.scalar(select(model.id).where(model.public_id == public_id)) is not None
        )


async def test_create_shuffle_complete_through_the_broker(
    settings: Settings, tokens: TokenFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    polly = person_data("worker", "Polly Parrot")
    kesha = person_data("worker", "Kesha Popug")
    manager = tokens.headers("manager")
    printed: list[str] = []

    def lines(containing: str) -> list[str]:
        printed.extend(capsys.readouterr().out.splitlines())
        return [line for line in printed if containing in line]

    async with (
        service_harness("tasks", settings, tokens) as tasks,
        service_harness("notifications", settings, tokens) as notifications,
        watching_tasks(settings) as (seen, broker),
    ):
        for person in (polly, kesha):
            await _announce(broker, person)
            await eventually(partial(_known, tasks, TaskPerson, person["public_id"]))
            await eventually(partial(_known, notifications, NoticePerson, person["public_id"]))

        # create -> TaskCreated v2 + TaskAssigned, and three lines on notifications' stdout
        response = await tasks.client.post(
            "/api/tasks",
            json={"title": "Sharpen the beak", "jira_id": "POPUG-42"},
            headers=manager,
        )
        assert response.status_code == 201
        first = response.json()
        owner = polly if first["assignee_public_id"] == polly["public_id"] else kesha
        told = await eventually(now(lambda: len(lines("“Sharpen the beak” (POPUG-42)")) == 3))
        told = lines("“Sharpen the beak” (POPUG-42)")
        assert [line.split(" ", 1)[0] for line in told] == ["[email]", "[slack]", "[sms]"]
        assert all(owner["full_name"] in line for line in told)
        assert f"<{owner['email']}>" in told[0]
        created = await eventually(now(lambda: seen.named("TaskCreated")))
        assert (created[0].event_version, created[0].data["jira_id"]) == (2, "POPUG-42")

        # many tasks, a few done, then a shuffle: one TaskAssigned per open task
        made = [first]
        for i in range(59):
            reply = await tasks.client.post(
                "/api/tasks", json={"title": f"Task {i}"}, headers=manager
            )
            made.append(reply.json())
        for task in made[::10]:
            done = await tasks.client.post(
                f"/api/tasks/{task['public_id']}/complete",
                headers=tokens.headers("worker", task["assignee_public_id"]),
            )
            assert done.status_code == 200
        open_ids = {t["public_id"] for t in made} - {t["public_id"] for t in made[::10]}

        shuffle = await tasks.client.post("/api/tasks/shuffle", headers=tokens.headers("admin"))
        assert shuffle.json()["reassigned"] == len(open_ids) == 54
        shuffle_id = shuffle.json()["shuffle_id"]

        def shuffled() -> list[Event]:
            return [e for e in seen.named("TaskAssigned") if e.data["shuffle_id"] == shuffle_id]

        await eventually(now(lambda: len(shuffled()) >= len(open_ids)))
        # A task created now is a marker: the tasks stream keeps the order the outbox
        # published in, so once its events are seen, any extra copy of an earlier one
        # (a shuffle event sent twice, say) has been seen too.
        marker = await tasks.client.post("/api/tasks", json={"title": "Marker"}, headers=manager)
        marker_id = marker.json()["public_id"]
        await eventually(
            now(
                lambda: [
                    e for e in seen.named("TaskAssigned") if e.data["task_public_id"] == marker_id
                ]
            )
        )
        per_task = Counter(e.data["task_public_id"] for e in shuffled())
        assert per_task == dict.fromkeys(open_ids, 1)
        assert len(seen.named("TaskAssigned")) == 60 + 54 + 1
        await eventually(now(lambda: len(lines("by a shuffle")) == 3 * 54))

        # complete -> TaskCompleted
        task = next(t for t in shuffled() if t.data["task_public_id"] in open_ids)
        reply = await tasks.client.post(
            f"/api/tasks/{task.data['task_public_id']}/complete",
            headers=tokens.headers("worker", task.data["assignee_public_id"]),
        )
        assert reply.status_code == 200
        completed = await eventually(
            now(
                lambda: [
                    e
                    for e in seen.named("TaskCompleted")
                    if e.data["task_public_id"] == task.data["task_public_id"]
                ]
            )
        )
        assert completed[0].data["assignee_public_id"] == task.data["assignee_public_id"]
        assert len(seen.named("TaskCompleted")) == 7

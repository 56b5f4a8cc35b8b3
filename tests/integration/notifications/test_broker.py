"""Notifications as it runs: the real consumer on the bundled NATS, its sender job and the
stdout adapter. Events come out of order and from an older producer (TaskCreated v1)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from ates.config import Settings
from ates.platform.broker import OutgoingMessage, create_broker
from ates.platform.events import Event
from tests.integration.tasks.helpers import person_data
from tests.support import TokenFactory, eventually, service_harness

pytestmark = pytest.mark.integration


def message(name: str, version: int, data: dict[str, Any], producer: str) -> OutgoingMessage:
    event = Event(name, version, data, producer)
    domain = {"Account": "accounts", "Task": "tasks", "Payout": "billing"}
    prefix = next(p for p in domain if name.startswith(p))
    return OutgoingMessage(str(event.event_id), domain[prefix], name, event.to_json().encode())


async def test_lines_on_stdout_for_assignments_and_payouts(
    settings: Settings, tokens: TokenFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    polly = person_data("worker", "Polly Parrot")
    task = str(uuid.uuid4())
    printed: list[str] = []

    async def lines(count: int) -> list[str] | None:
        printed.extend(capsys.readouterr().out.splitlines())
        return printed if len(printed) >= count else None

    assert settings.broker_url is not None
    broker = create_broker(settings.broker_url)
    await broker.connect()
    try:
        async with service_harness("notifications", settings, tokens):
            # the assignment and the payout first; who and what they are about later
            await broker.publish(
                [
                    message(
                        "TaskAssigned",
                        1,
                        {
                            "task_public_id": task,
                            "assignee_public_id": polly["public_id"],
                            "previous_assignee_public_id": None,
                            "reason": "created",
                            "shuffle_id": None,
                        },
                        "tasks",
                    ),
                    message(
                        "PayoutMade",
                        1,
                        {
                            "owner_public_id": polly["public_id"],
                            "amount_cents": 3_099,
                            "business_date": "2026-11-24",
                        },
                        "billing",
                    ),
                ]
            )
            await broker.publish(
                [
                    message(
                        "TaskCreated",
                        1,  # an older producer: the jira id still inside the title
                        {
                            "public_id": task,
                            "title": "[POPUG-9] Polish the beak",
                            "description": "",
                        },
                        "tasks-legacy",
                    ),
                    message("AccountCreated", 1, polly, "auth"),
                ]
            )
            await eventually(lambda: lines(4))
    finally:
        await broker.close()

    name, email = "Polly Parrot", polly["email"]
    told = "Polly Parrot, the task “Polish the beak” (POPUG-9) is assigned to you."
    assert sorted(printed) == sorted(
        [
            f"[email] to {name} <{email}>: {told}",
            f"[slack] to @{polly['username']} ({name}): {told}",
            f"[sms] to {name}: {told}",
            f"[email] to {name} <{email}>: Polly Parrot, you were paid 30.99 $ for 2026-11-24.",
        ]
    )

"""Billing on the real broker: task events in, money moved, days closed, payouts emailed.

The tasks and auth services are played by a producer that publishes their events into
NATS as they would (built from the registry's schemas); billing and notifications run
in-process with their relays and consumers on the same NATS server.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import pytest

from ates.config import Settings
from ates.platform.broker import Ack, Broker, Delivery, Outcome, OutgoingMessage, create_broker
from ates.platform.deadletters import list_dead_letters
from ates.platform.events import Event, default_registry
from ates.services.billing import verify
from tests.integration.billing import events as ev
from tests.support import Harness, TokenFactory, eventually, service_harness

pytestmark = pytest.mark.integration

BILLING_EVENTS = ["TaskPriced", "TransactionApplied", "PayoutMade", "DayClosed"]


class Watcher:
    """A consumer group of its own on billing's stream: what billing published."""

    def __init__(self) -> None:
        self.seen: list[Event] = []

    async def __call__(self, deliveries: Sequence[Delivery]) -> list[Outcome]:
        self.seen.extend(Event.from_json(delivery.body) for delivery in deliveries)
        return [Ack()] * len(deliveries)

    def named(self, name: str) -> list[dict[str, object]]:
        return [e.data for e in self.seen if e.event_name == name]


@contextlib.asynccontextmanager
async def connected(settings: Settings) -> AsyncIterator[Broker]:
    assert settings.broker_url is not None
    broker = create_broker(settings.broker_url)
    await broker.connect()
    await broker.ensure_streams(default_registry().domains())
    try:
        yield broker
    finally:
        await broker.close()


async def publish(broker: Broker, *events: Event) -> None:
    registry = default_registry()
    await broker.publish(
        [
            OutgoingMessage(
                str(e.event_id),
                registry.domain_of(e.event_name),
                e.event_name,
                e.to_json().encode(),
            )
            for e in events
        ]
    )


async def publish_raw(broker: Broker, name: str, data: dict[str, object]) -> str:
    """An event as a broken producer might send it: not validated here."""
    event = Event(name, 1, data, "tasks")
    await broker.publish(
        [OutgoingMessage(str(event.event_id), "tasks", name, event.to_json().encode())]
    )
    return str(event.event_id)


async def balance(billing: Harness, tokens: TokenFactory, person: str) -> int | None:
    response = await billing.client.get(
        "/api/accounts/me", headers=tokens.headers("worker", person)
    )
    return response.json()["balance_cents"] if response.status_code == 200 else None


async def balance_is(billing: Harness, tokens: TokenFactory, person: str, cents: int) -> bool:
    return await balance(billing, tokens, person) == cents


async def test_money_moves_and_days_close_through_the_broker(
    settings: Settings, tokens: TokenFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    earner, debtor = str(uuid.uuid4()), str(uuid.uuid4())
    paid_task, unpaid_task = str(uuid.uuid4()), str(uuid.uuid4())
    watcher, stdout = Watcher(), Printed(capsys)
    async with (
        connected(settings) as broker,
        service_harness("billing", settings, tokens) as billing,
        service_harness("notifications", settings, tokens),
    ):
        watching = asyncio.create_task(
            broker.consume(f"watch-{uuid.uuid4().hex[:6]}", "billing", BILLING_EVENTS, watcher)
        )
        try:
            # the earner is announced by auth; the debtor is first heard of in a task event
            await publish(broker, ev.account_created(earner, name="Polly Parrot"))
            await publish(
                broker,
                ev.task_created_v1(paid_task, "[POPUG-7] Polish the perch"),  # older producer
                ev.task_assigned(paid_task, earner),
            )
            priced = await eventually(lambda: _price(billing, tokens, paid_task))
            fee, reward = priced["assign_fee_cents"], priced["reward_cents"]
            assert await eventually(lambda: balance_is(billing, tokens, earner, -fee))

            await publish(broker, ev.task_completed(paid_task, earner))
            earned = reward - fee
            assert await eventually(lambda: balance_is(billing, tokens, earner, earned))

            await publish(
                broker, ev.task_created(unpaid_task), ev.task_assigned(unpaid_task, debtor)
            )
            unpaid = await eventually(lambda: _price(billing, tokens, unpaid_task))
            owed = -unpaid["assign_fee_cents"]
            assert await eventually(lambda: balance_is(billing, tokens, debtor, owed))

            today = datetime.now(UTC).date().isoformat()
            close = f"/api/days/{today}/close"
            closed = await billing.client.post(close, headers=tokens.headers("accountant"))
            assert closed.status_code == 200, closed.text
            assert [
                (p["owner_public_id"], p["amount_cents"]) for p in closed.json()["payouts"]
            ] == [(earner, earned)]
            assert await balance(billing, tokens, earner) == 0
            assert await balance(billing, tokens, debtor) == owed  # carried over

            paid = {"owner_public_id": earner, "amount_cents": earned, "business_date": today}
            await eventually(lambda: _has(watcher.named("PayoutMade"), paid))
            await eventually(lambda: _has(watcher.named("DayClosed"), {"business_date": today}))
            email = f"Polly Parrot, you were paid {earned // 100}.{earned % 100:02d} $ for {today}"
            await eventually(lambda: stdout.contains(email), timeout=20)

            again = await billing.client.post(close, headers=tokens.headers("admin"))
            assert again.json()["newly_closed"] is False
            # A task assigned now is a marker: billing's stream keeps the order its outbox
            # published in, so once the marker's fee is seen (written after its price), a
            # second payout written by the second close would have been seen too.
            marker, someone = str(uuid.uuid4()), str(uuid.uuid4())
            await publish(broker, ev.task_created(marker), ev.task_assigned(marker, someone))
            await eventually(lambda: _charged(watcher, marker))
            assert watcher.named("PayoutMade") == [paid]
            assert (
                await balance(billing, tokens, earner),
                await balance(billing, tokens, debtor),
            ) == (
                0,
                owed,
            )
            kinds = [str(d["kind"]) for d in watcher.named("TransactionApplied")]
            assert sorted(kinds) == ["assign_fee", "assign_fee", "assign_fee", "payout", "reward"]
            assert len(watcher.named("TaskPriced")) == 3  # the marker's too
        finally:
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching


async def test_a_broken_event_is_dead_lettered_with_its_reason(
    settings: Settings, tokens: TokenFactory
) -> None:
    async with (
        connected(settings) as broker,
        service_harness("billing", settings, tokens) as billing,
    ):
        bad = await publish_raw(
            broker,
            "TaskAssigned",
            {
                "task_public_id": str(uuid.uuid4()),
                "assignee_public_id": str(uuid.uuid4()),
                "previous_assignee_public_id": None,
                "reason": "bribery",
                "shuffle_id": None,
            },
        )

        async def letters() -> list[object]:
            return [
                letter for letter in await list_dead_letters(billing.db) if bad in letter.payload
            ]

        [letter] = await eventually(letters)
        assert letter.error.startswith("invalid:") and "reason" in letter.error
        async with billing.db.reader() as session:
            assert await verify.problems(session) == []


async def _price(billing: Harness, tokens: TokenFactory, task: str) -> dict[str, int] | None:
    response = await billing.client.get(f"/api/tasks/{task}/price", headers=tokens.headers())
    return response.json() if response.status_code == 200 else None


async def _has(items: list[dict[str, object]], wanted: dict[str, object]) -> bool:
    return wanted in items


async def _charged(watcher: Watcher, task: str) -> bool:
    return any(
        d["task_public_id"] == task and d["kind"] == "assign_fee"
        for d in watcher.named("TransactionApplied")
    )


class Printed:
    """Everything written to stdout so far (capsys hands it out in pieces)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.text = ""

    async def contains(self, wanted: str) -> bool:
        self.text += self.capsys.readouterr().out
        return wanted in self.text

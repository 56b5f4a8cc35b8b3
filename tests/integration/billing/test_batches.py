"""Booking a batch at once books exactly what booking its events one by one books.

The consumer applies a batch's task events together (``billing.booking``) and falls back
to one event at a time when something in the batch fails. Both paths must leave the same
ledger: the same transactions (keys, kinds, amounts, days, descriptions), the same prices,
the same balances, and the same ``TransactionApplied`` events, balance after each posting
included. Prices are drawn from one seeded generator in event order on both sides.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from ates.platform.broker import Ack, Delivery, subject_for
from ates.platform.consumer import EventConsumer
from ates.platform.db import Database
from ates.platform.events import Event, default_registry
from ates.platform.tables import outbox
from ates.platform.tracing import ConsumedBatch
from ates.platform.uow import UnitOfWork
from ates.services.billing.consumers import make_handlers
from ates.services.billing.models import Account, Task, Transaction
from tests.integration.billing import events as ev
from tests.integration.billing.conftest import copy_database

pytestmark = pytest.mark.integration


class Together(EventConsumer):
    """The consumer, counting the events of batches it had to apply one by one."""

    fell_back = 0

    async def _apply_one_by_one(
        self, uow: UnitOfWork, items: Sequence[Any], spans: ConsumedBatch | None
    ) -> None:
        if len(items) > 1:
            self.fell_back += len(items)
        await super()._apply_one_by_one(uow, items, spans)


def workload(seed: int) -> list[Event]:
    """Tasks created, assigned, reshuffled and completed by a few workers, with some
    events arriving before the ones they follow and some delivered twice."""
    rng = random.Random(seed)
    workers = [ev.new_id() for _ in range(4)]
    start = datetime.now(UTC) - timedelta(hours=3)
    events: list[Event] = [ev.account_created(workers[0])]
    for n in range(40):
        task, worker = ev.new_id(), rng.choice(workers)
        at = start + timedelta(minutes=n)
        created = ev.task_created(task, title=f"Task {n}", jira_id=f"POPUG-{n}", at=at)
        assigned = ev.task_assigned(task, worker, at=at)
        story = [created, assigned]
        if rng.random() < 0.3:
            worker = rng.choice(workers)
            story.append(ev.task_assigned(task, worker, reason="shuffle", at=at))
        if rng.random() < 0.6:
            story.append(ev.task_completed(task, worker, at=at + timedelta(seconds=30)))
        if rng.random() < 0.2:
            story.reverse()  # the completion first, the creation last
        events += story
        if rng.random() < 0.1:
            events.append(rng.choice(story))  # a redelivery
    return events


def deliveries(events: list[Event]) -> list[Delivery]:
    registry = default_registry()
    return [
        Delivery(
            body=event.to_json().encode(),
            subject=subject_for(registry.domain_of(event.event_name), event.event_name),
            attempt=1,
        )
        for event in events
    ]


async def ledger_state(db: Database) -> dict[str, Any]:
    async with db.reader() as session:
        movements = await session.execute(
            sa.select(
                Transaction.idempotency_key,
                Transaction.kind,
                Transaction.reason,
                Transaction.amount_cents,
                Transaction.task_public_id,
                Transaction.business_date,
                Transaction.description,
                Account.owner_public_id,
            ).join(Account, Account.id == Transaction.owner_account_id)
        )
        tasks = (await session.execute(sa.select(Task))).scalars()
        accounts = (await session.execute(sa.select(Account))).scalars()
        payloads = await session.scalars(
            sa.select(outbox.c.payload)
            .where(outbox.c.event_name == "TransactionApplied")
            .order_by(outbox.c.id)
        )
        applied = [Event.from_json(payload) for payload in payloads]
        times: dict[str, list[str]] = {}
        for event in applied:
            times.setdefault(event.data["owner_public_id"], []).append(event.data["applied_at"])
        return {
            "transactions": sorted(tuple(row) for row in movements),
            "prices": {
                t.public_id: (t.assign_fee_cents, t.reward_cents, t.title, t.jira_id) for t in tasks
            },
            "balances": {a.owner_public_id or a.kind: a.balance_cents for a in accounts},
            "applied": [_without_ids(event) for event in applied],
            "times": times,
        }


def _without_ids(event: Event) -> dict[str, Any]:
    data = dict(event.data)
    del data["transaction_public_id"], data["applied_at"]
    return data


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_batch_books_what_one_by_one_books(
    billing_template: Path, tmp_path: Path, seed: int
) -> None:
    events = workload(seed)
    one_db = copy_database(billing_template, tmp_path / "one" / "billing.db")
    many_db = copy_database(billing_template, tmp_path / "many" / "billing.db")
    registry = default_registry()
    one = EventConsumer("billing", one_db, make_handlers(random.Random(seed)), registry)
    many = Together("billing", many_db, make_handlers(random.Random(seed)), registry)

    for delivery in deliveries(events):
        assert await one.deliver_one(delivery) == Ack()
    batch = deliveries(events)
    for start in range(0, len(batch), 25):
        assert set(await many(batch[start : start + 25])) == {Ack()}

    assert many.fell_back == 0, "the batches were applied together, not one by one"
    expected, actual = await ledger_state(one_db), await ledger_state(many_db)
    assert actual["transactions"] == expected["transactions"]
    assert actual["prices"] == expected["prices"]
    assert actual["balances"] == expected["balances"]
    assert actual["applied"] == expected["applied"]
    assert sum(actual["balances"].values()) == 0  # double entry: the company took the rest
    for state in (expected, actual):
        # readers (analytics) keep the balance after a person's latest movement, by time
        for owner, times in state["times"].items():
            assert times == sorted(set(times)), f"{owner}'s movements share or reverse a time"
    await one_db.dispose()
    await many_db.dispose()

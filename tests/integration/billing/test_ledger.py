"""Booking task events into the ledger: once, in any order, at one price, on the right day."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from ates.platform.tables import outbox
from ates.services.billing.models import COMPANY_ACCOUNT_ID, Entry
from tests.integration.billing import events as ev
from tests.integration.billing.books import Books

pytestmark = pytest.mark.integration

NOON = datetime(2026, 3, 3, 12, 0, tzinfo=UTC)
DAY = NOON.date()


async def _priced_events(books: Books) -> list[dict[str, object]]:
    async with books.db.reader() as session:
        rows = await session.scalars(
            sa.select(outbox.c.payload).where(outbox.c.event_name == "TaskPriced")
        )
        return [json.loads(p)["data"] for p in rows.all()]


async def test_assignment_charges_the_fee_and_completion_pays_the_reward(books: Books) -> None:
    worker, task = ev.new_id(), ev.new_id()
    await books.apply(ev.account_created(worker))
    await books.apply(ev.task_created(task))
    await books.apply(ev.task_assigned(task, worker, at=NOON))
    fee, reward = await books.price(task)
    assert 1000 <= fee <= 2000 and 2000 <= reward <= 4000
    assert await books.balance(worker) == -fee

    await books.apply(ev.task_completed(task, worker, at=NOON))
    assert await books.balance(worker) == reward - fee
    assert await books.earnings(DAY) == {DAY: fee - reward}
    log = await books.log(worker, DAY)
    assert [(m.kind, m.debit_cents, m.credit_cents) for m in log] == [
        ("assign_fee", fee, 0),
        ("reward", 0, reward),
    ]
    assert log[0].description.startswith("assigned: [POPUG-42] Sharpen the beak, fee ")
    assert log[1].description.startswith("completed: [POPUG-42] Sharpen the beak, reward ")
    assert await books.problems() == []


async def test_every_transaction_is_published_with_its_balance(books: Books) -> None:
    worker, task = ev.new_id(), ev.new_id()
    await books.apply(ev.task_assigned(task, worker, at=NOON))
    await books.apply(ev.task_completed(task, worker, at=NOON))
    fee, reward = await books.price(task)
    async with books.db.reader() as session:
        rows = await session.scalars(
            sa.select(outbox.c.payload)
            .where(outbox.c.event_name == "TransactionApplied")
            .order_by(outbox.c.id)
        )
        published = [json.loads(p)["data"] for p in rows.all()]
    assert [
        (d["kind"], d["debit_cents"], d["credit_cents"], d["balance_after_cents"])
        for d in published
    ] == [("assign_fee", fee, 0, -fee), ("reward", 0, reward, reward - fee)]
    assert {d["owner_public_id"] for d in published} == {worker}
    assert {d["business_date"] for d in published} == {DAY.isoformat()}


async def test_a_price_is_drawn_once_whichever_event_comes_first(books: Books) -> None:
    worker, task = ev.new_id(), ev.new_id()
    # tasks' events arrive backwards: completion, assignment, creation
    await books.apply(ev.task_completed(task, worker, at=NOON))
    price = await books.price(task)
    await books.apply(ev.task_assigned(task, worker, at=NOON))
    await books.apply(ev.task_created(task))
    assert await books.price(task) == price
    assert await _priced_events(books) == [
        {"task_public_id": task, "assign_fee_cents": price[0], "reward_cents": price[1]}
    ]
    assert await books.balance(worker) == price[1] - price[0]
    # the fee was booked before the title was known; the audit log names the task now
    descriptions = [m.description for m in await books.log(worker, DAY)]
    assert all("[POPUG-42] Sharpen the beak" in d for d in descriptions), descriptions


async def test_a_person_unknown_so_far_gets_an_account_then_their_name(books: Books) -> None:
    worker, task = ev.new_id(), ev.new_id()
    await books.apply(ev.task_assigned(task, worker, at=NOON))
    account = await books.account(worker)
    assert account is not None and account.owner_name is None
    await books.apply(ev.account_created(worker, name="Kesha"))
    account = await books.account(worker)
    assert account is not None and account.owner_name == "Kesha"
    assert account.balance_cents == -(await books.price(task))[0]


async def test_account_events_out_of_order_keep_the_newest_facts(books: Books) -> None:
    worker = ev.new_id()
    created = ev.account_created(worker, name="Kesha")
    later = datetime.now(UTC) + timedelta(minutes=5)
    updated = ev.make(
        "AccountUpdated",
        {**created.data, "full_name": "Kesha the Great", "role": "manager", "active": True},
        at=later,
        producer="auth",
    )
    deactivated = ev.make(
        "AccountDeactivated",
        {"public_id": worker},
        at=later + timedelta(seconds=30),
        producer="auth",
    )
    role = ev.make(
        "AccountRoleChanged",
        {"public_id": worker, "old_role": "manager", "new_role": "accountant"},
        at=later + timedelta(minutes=1),
        producer="auth",
    )
    for event in (role, deactivated, updated, created):  # newest first
        await books.apply(event)
    account = await books.account(worker)
    assert account is not None
    assert (account.owner_name, account.owner_role, account.active) == (
        "Kesha the Great",
        "accountant",
        False,
    )


async def test_a_v1_task_created_from_an_older_producer_is_booked_right(books: Books) -> None:
    worker, task = ev.new_id(), ev.new_id()
    await books.apply(ev.task_created_v1(task, "[POPUG-7] Polish the perch"))
    await books.apply(ev.task_assigned(task, worker, at=NOON))
    [movement] = await books.log(worker, DAY)
    assert movement.description.startswith("assigned: [POPUG-7] Polish the perch, fee")


async def test_a_redelivered_or_replayed_event_is_booked_once(books: Books) -> None:
    worker, task = ev.new_id(), ev.new_id()
    assigned = ev.task_assigned(task, worker, at=NOON)
    completed = ev.task_completed(task, worker, at=NOON)
    for event in (assigned, assigned, completed, completed):
        await books.apply(event)
    # a fresh inbox (a replay into a new consumer) must not pay again either
    replay = Books(books.db, random.Random(99), inbox="billing-replay")
    for event in (assigned, completed):
        await replay.apply(event)
    fee, reward = await books.price(task)
    assert await books.balance(worker) == reward - fee
    assert len(await books.transactions()) == 2
    assert await books.problems() == []


async def test_a_shuffle_charges_the_fee_again_and_says_so(books: Books) -> None:
    first, second, task = ev.new_id(), ev.new_id(), ev.new_id()
    await books.apply(ev.task_created(task, "Count the seeds", None))
    await books.apply(ev.task_assigned(task, first, at=NOON))
    await books.apply(ev.task_assigned(task, second, reason="shuffle", previous=first, at=NOON))
    fee, _ = await books.price(task)
    assert (await books.balance(first), await books.balance(second)) == (-fee, -fee)
    [movement] = await books.log(second, DAY)
    assert movement.description.startswith("reassigned by shuffle: Count the seeds, fee")
    assert await books.earnings(DAY) == {DAY: 2 * fee}


async def test_a_second_completion_under_another_event_id_is_dead_lettered(
    books: Books,
) -> None:
    worker, task = ev.new_id(), ev.new_id()
    await books.apply(ev.task_completed(task, worker, at=NOON))
    await books.apply(ev.task_completed(task, worker, at=NOON))  # acked: dead-lettered
    [reason] = await books.dead_letters()
    assert reason.startswith("rejected: task ") and "already rewarded" in reason
    assert len(await books.transactions()) == 1


async def test_a_completion_with_a_bad_time_is_dead_lettered_with_its_reason(
    books: Books,
) -> None:
    worker, task = ev.new_id(), ev.new_id()
    event = ev.task_completed(task, worker)
    event.data["completed_at"] = "yesterday at noon"
    await books.apply(event)
    [reason] = await books.dead_letters()
    assert "completed_at" in reason
    assert await books.transactions() == []


class BrokenRandom(random.Random):
    """A random source gone wrong: it returns whatever amount the test asks for."""

    def __init__(self, amount: float) -> None:
        super().__init__(0)
        self.amount = amount

    def randint(self, a: int, b: int) -> int:
        return self.amount  # type: ignore[return-value]


@pytest.mark.parametrize("amount", [-1500, 15.5, 99_999])
async def test_a_negative_or_fractional_amount_is_dead_lettered_with_its_reason(
    books: Books, amount: float
) -> None:
    broken = Books(books.db, BrokenRandom(amount))
    worker, task = ev.new_id(), ev.new_id()
    await broken.apply(ev.task_assigned(task, worker, at=NOON))  # acked: dead-lettered
    [reason] = await broken.dead_letters()
    assert reason.startswith("rejected: TaskAssigned: assign_fee_cents must be"), reason
    assert str(amount) in reason
    assert await books.transactions() == []
    assert await books.problems() == []


async def test_the_business_time_zone_decides_the_day(books: Books) -> None:
    await books.set_timezone("Asia/Tokyo")  # UTC+9: 20:00 UTC is 05:00 the next day
    worker, task = ev.new_id(), ev.new_id()
    evening = datetime(2026, 3, 3, 20, 0, tzinfo=UTC)
    await books.apply(ev.task_assigned(task, worker, at=evening))
    [transaction] = await books.transactions()
    assert transaction.business_date == date(2026, 3, 4)


async def test_ledger_rows_cannot_be_changed_or_removed(books: Books) -> None:
    await books.apply(ev.task_assigned(ev.new_id(), ev.new_id(), at=NOON))
    for statement in (
        sa.update(Entry).values(amount_cents=1),
        sa.delete(Entry),
        sa.text("UPDATE transactions SET amount_cents = 1"),
        sa.text("DELETE FROM transactions"),
    ):
        async with books.db.sessions() as session, session.begin():
            with pytest.raises(DBAPIError, match="immutable"):
                await session.execute(statement)


async def test_verify_finds_a_tampered_balance_and_an_unbalanced_entry(books: Books) -> None:
    worker, task = ev.new_id(), ev.new_id()
    await books.apply(ev.task_assigned(task, worker, at=NOON))
    assert await books.problems() == []
    async with books.db.sessions() as session, session.begin():
        await session.execute(sa.text("UPDATE accounts SET balance_cents = balance_cents + 5"))
        transaction_id = await session.scalar(sa.text("SELECT min(id) FROM transactions"))
        await session.execute(
            sa.insert(Entry).values(
                transaction_id=transaction_id,
                account_id=COMPANY_ACCOUNT_ID,
                amount_cents=7,
                business_date=DAY,
            )
        )
    found = await books.problems()
    assert any("legs sum to 7" in p for p in found), found
    assert any("all entries sum to 7" in p for p in found), found
    assert any("cached balance" in p for p in found), found

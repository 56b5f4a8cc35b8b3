"""Closing business days: payouts once, debts carried over, late movements moved on (B7)."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from ates.platform.db import Database
from ates.platform.tables import outbox
from ates.services.billing import scheduler
from ates.services.billing.domain import DayRuleError
from ates.services.billing.models import ClosedDay
from tests.integration.billing import events as ev
from tests.integration.billing.books import Books

pytestmark = pytest.mark.integration

MONDAY = date(2026, 3, 2)
TUESDAY = MONDAY + timedelta(days=1)
WEDNESDAY = MONDAY + timedelta(days=2)


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


async def _published(books: Books, name: str) -> list[dict[str, object]]:
    async with books.db.reader() as session:
        rows = await session.scalars(
            sa.select(outbox.c.payload).where(outbox.c.event_name == name).order_by(outbox.c.id)
        )
        return [json.loads(p)["data"] for p in rows.all()]


async def _earner_and_debtor(books: Books, day: date) -> tuple[str, str, int, int]:
    """One worker who completes a task (positive) and one who only pays a fee (negative)."""
    earner, debtor, paid, unpaid = ev.new_id(), ev.new_id(), ev.new_id(), ev.new_id()
    await books.apply(ev.task_assigned(paid, earner, at=at(day, 9)))
    await books.apply(ev.task_completed(paid, earner, at=at(day, 10)))
    await books.apply(ev.task_assigned(unpaid, debtor, at=at(day, 11)))
    return earner, debtor, await books.balance(earner), await books.balance(debtor)


async def test_closing_a_day_pays_positive_balances_and_carries_debts(books: Books) -> None:
    earner, debtor, earned, owed = await _earner_and_debtor(books, MONDAY)
    assert earned > 0 > owed

    result = await books.close(MONDAY, now=at(TUESDAY, 0))
    assert result.newly_closed
    assert [(p.owner_public_id, p.amount_cents) for p in result.payouts] == [(earner, earned)]
    assert await books.balance(earner) == 0
    assert await books.balance(debtor) == owed  # carried over to the next day
    payout = (await books.log(earner, MONDAY))[-1]
    assert (payout.kind, payout.debit_cents) == ("payout", earned)
    assert payout.description == f"paid out {earned // 100}.{earned % 100:02d} $ for 2026-03-02"
    assert await _published(books, "PayoutMade") == [
        {"owner_public_id": earner, "amount_cents": earned, "business_date": "2026-03-02"}
    ]
    assert await _published(books, "DayClosed") == [{"business_date": "2026-03-02"}]
    assert await books.problems() == []


async def test_closing_twice_pays_nothing_twice(books: Books) -> None:
    earner, _, _, _ = await _earner_and_debtor(books, MONDAY)
    first = await books.close(MONDAY, now=at(TUESDAY))
    again = await books.close(MONDAY, now=at(TUESDAY, 13))
    assert not again.newly_closed
    assert again.payouts == first.payouts
    assert again.closed_at == first.closed_at
    assert len(await _published(books, "PayoutMade")) == 1
    assert len(await _published(books, "DayClosed")) == 1
    assert await books.balance(earner) == 0


async def test_a_future_day_is_refused(books: Books) -> None:
    with pytest.raises(DayRuleError, match="2026-03-03 is in the future"):
        await books.close(TUESDAY, now=at(MONDAY, 23))
    # today itself may be closed early
    assert (await books.close(MONDAY, now=at(MONDAY, 15))).newly_closed


async def test_a_movement_for_a_closed_day_is_booked_on_the_first_open_day(
    books: Books,
) -> None:
    earner, _, _, _ = await _earner_and_debtor(books, MONDAY)
    await books.close(MONDAY, now=at(TUESDAY, 0))
    task = ev.new_id()
    # assigned late on Monday, but billing hears of it after Monday was closed
    await books.apply(ev.task_assigned(task, earner, at=at(MONDAY, 23)))
    fee, _ = await books.price(task)
    [late] = await books.log(earner, TUESDAY)
    assert late.business_date == TUESDAY
    assert late.description.endswith(
        "(happened on 2026-03-02, a day already closed; booked on 2026-03-03)"
    )
    assert await books.earnings(MONDAY, TUESDAY) == {
        MONDAY: (await books.earnings(MONDAY))[MONDAY],
        TUESDAY: fee,
    }
    assert await books.problems() == []


async def test_closing_yesterday_late_leaves_todays_movements_for_today(books: Books) -> None:
    worker = ev.new_id()
    yesterdays, todays = ev.new_id(), ev.new_id()
    await books.apply(ev.task_assigned(yesterdays, worker, at=at(MONDAY)))
    await books.apply(ev.task_completed(yesterdays, worker, at=at(MONDAY)))
    await books.apply(ev.task_assigned(todays, worker, at=at(TUESDAY, 0)))
    monday_balance = sum(m.credit_cents - m.debit_cents for m in await books.log(worker, MONDAY))

    result = await books.close(MONDAY, now=at(TUESDAY, 1))
    assert [p.amount_cents for p in result.payouts] == [monday_balance]
    assert await books.balance(worker) == -(await books.price(todays))[0]


async def test_closing_a_later_day_closes_the_open_days_before_it_first(books: Books) -> None:
    worker = ev.new_id()
    for day in (MONDAY, TUESDAY):
        task = ev.new_id()
        await books.apply(ev.task_assigned(task, worker, at=at(day)))
        await books.apply(ev.task_completed(task, worker, at=at(day)))
    monday = sum(m.credit_cents - m.debit_cents for m in await books.log(worker, MONDAY))
    tuesday = sum(m.credit_cents - m.debit_cents for m in await books.log(worker, TUESDAY))

    result = await books.close(TUESDAY, now=at(WEDNESDAY))
    assert result.also_closed == [MONDAY]
    # the close reports what it paid for every day it closed, not the last day's alone
    assert [(p.business_date, p.amount_cents) for p in result.payouts] == [
        (MONDAY, monday),
        (TUESDAY, tuesday),
    ]
    assert result.paid_cents == monday + tuesday
    assert (await books.close(MONDAY, now=at(WEDNESDAY))).payouts[0].amount_cents == monday
    assert await books.balance(worker) == 0
    assert [d["business_date"] for d in await _published(books, "DayClosed")] == [
        "2026-03-02",
        "2026-03-03",
    ]
    assert await books.problems() == []


async def test_two_closes_at_once_pay_once(books: Books) -> None:
    earner, _, earned, _ = await _earner_and_debtor(books, MONDAY)
    # a second engine on the same file: another process closing the same day
    other = Books(Database(str(books.db.url)), random.Random(1))
    try:
        results = await asyncio.gather(
            books.close(MONDAY, now=at(TUESDAY)), other.close(MONDAY, now=at(TUESDAY))
        )
    finally:
        await other.db.dispose()
    assert sorted(r.newly_closed for r in results) == [False, True]
    assert all([p.amount_cents for p in r.payouts] == [earned] for r in results)
    assert len(await _published(books, "PayoutMade")) == 1
    assert await books.balance(earner) == 0


async def test_the_scheduler_closes_yesterday_once(books: Books) -> None:
    _, _, earned, _ = await _earner_and_debtor(books, MONDAY)
    result = await scheduler.close_past_days(
        books.db, books.new_uow, at(TUESDAY, 0) + timedelta(seconds=5)
    )
    assert result is not None and result.business_date == MONDAY
    assert [p.amount_cents for p in result.payouts] == [earned]
    assert await scheduler.close_past_days(books.db, books.new_uow, at(TUESDAY, 8)) is None
    async with books.db.reader() as session:
        closed = await session.scalars(sa.select(ClosedDay.business_date))
        assert list(closed.all()) == [MONDAY]


async def test_the_scheduler_uses_the_business_time_zone(books: Books) -> None:
    await books.set_timezone("America/New_York")  # UTC-5 in March before the 8th
    # 03:00 UTC on Tuesday is still Monday evening in New York: Sunday ended
    result = await scheduler.close_past_days(books.db, books.new_uow, at(TUESDAY, 3))
    assert result is not None and result.business_date == MONDAY - timedelta(days=1)

"""What the dashboard asks of the projections. Every answer reads a handful of
pre-aggregated rows: no query grows with the number of tasks or events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Integer, column, func, or_, select, values
from sqlalchemy.ext.asyncio import AsyncSession

from ates.services.analytics.domain import (
    Completion,
    Period,
    counts_as_worker,
    day_period,
    management_earnings,
    month_period,
    most_expensive,
    week_period,
)
from ates.services.analytics.models import Balance, ClosedDay, DailyEarnings, Person, Task
from ates.services.analytics.models import TopCompletion as Top

# DESIGN §4 analytics: a range answers one line per day; a year is plenty for a person
MAX_RANGE_DAYS = 366


@dataclass(frozen=True, slots=True)
class TaskLine:
    task_public_id: str
    title: str | None
    jira_id: str | None
    reward_cents: int
    completed_at: datetime

    def completion(self) -> Completion:
        return Completion(self.task_public_id, self.reward_cents, self.completed_at)


@dataclass(frozen=True, slots=True)
class Dashboard:
    day: date
    management_earnings_cents: int
    negative_balance_workers: int
    day_top: TaskLine | None
    week_top: TaskLine | None
    month_top: TaskLine | None
    week: Period
    month: Period


@dataclass(frozen=True, slots=True)
class DayMoney:
    day: date
    fees_cents: int
    rewards_cents: int
    payouts_cents: int
    closed: bool

    @property
    def management_earnings_cents(self) -> int:
        return management_earnings(self.fees_cents, self.rewards_cents)


@dataclass(frozen=True, slots=True)
class Debtor:
    owner_public_id: str
    username: str | None
    full_name: str | None
    balance_cents: int


async def dashboard(session: AsyncSession, day: date, zone: ZoneInfo) -> Dashboard:
    week, month = week_period(day), month_period(day)
    day_top, week_top, month_top = await top_tasks(session, [day_period(day), week, month], zone)
    money = await money_by_day(session, day_period(day))
    return Dashboard(
        day=day,
        management_earnings_cents=money[0].management_earnings_cents,
        negative_balance_workers=await count_negative_workers(session),
        day_top=day_top,
        week_top=week_top,
        month_top=month_top,
        week=week,
        month=month,
    )


async def top_tasks(
    session: AsyncSession, periods: Sequence[Period], zone: ZoneInfo
) -> list[TaskLine | None]:
    """The most expensive completed task of each period, in one query: per period, the
    best of its 15-minute buckets (at most ~3,000 for a month), read by primary key."""
    if not periods:
        return []
    ranges = (
        values(
            column("idx", Integer),
            column("lo", BigInteger),
            column("hi", BigInteger),
            name="periods",
        )
        .data([(i, *period.buckets(zone)) for i, period in enumerate(periods)])
        .cte("periods")
    )
    best = (
        select(Top.task_public_id)
        .where(Top.bucket >= ranges.c.lo, Top.bucket < ranges.c.hi)
        .order_by(Top.reward_cents.desc(), Top.completed_at, Top.task_public_id)
        .limit(1)
        .scalar_subquery()
    )
    rows = (await session.execute(select(ranges.c.idx, best))).all()
    by_index = dict(rows)
    lines = await task_lines(session, {t for t in by_index.values() if t is not None})
    return [lines.get(by_index.get(i) or "") for i in range(len(periods))]


async def task_lines(session: AsyncSession, ids: set[str]) -> dict[str, TaskLine]:
    if not ids:
        return {}
    tasks = await session.scalars(select(Task).where(Task.public_id.in_(ids)))
    return {
        task.public_id: TaskLine(
            task_public_id=task.public_id,
            title=task.title,
            jira_id=task.jira_id,
            reward_cents=task.reward_cents or 0,
            completed_at=task.completed_at,
        )
        for task in tasks
        if task.completed_at is not None
    }


async def most_expensive_by_day(
    session: AsyncSession, period: Period, zone: ZoneInfo
) -> tuple[list[tuple[date, TaskLine | None]], TaskLine | None]:
    """One line per day of ``period`` and the period's own most expensive task."""
    days = period.days()
    tops = await top_tasks(session, [day_period(d) for d in days], zone)
    best = most_expensive(t.completion() for t in tops if t is not None)
    overall = next(
        (t for t in tops if t and best and t.task_public_id == best.task_public_id), None
    )
    return list(zip(days, tops, strict=True)), overall


async def money_by_day(session: AsyncSession, period: Period) -> list[DayMoney]:
    """Every day of ``period``, days without movements included (as zero)."""
    rows = {
        row.business_date: row
        for row in await session.scalars(
            select(DailyEarnings).where(
                DailyEarnings.business_date >= period.first,
                DailyEarnings.business_date <= period.last,
            )
        )
    }
    closed = set(
        await session.scalars(
            select(ClosedDay.business_date).where(
                ClosedDay.business_date >= period.first, ClosedDay.business_date <= period.last
            )
        )
    )
    result = []
    for day in period.days():
        row = rows.get(day)
        result.append(
            DayMoney(
                day=day,
                fees_cents=row.fees_cents if row else 0,
                rewards_cents=row.rewards_cents if row else 0,
                payouts_cents=row.payouts_cents if row else 0,
                closed=day in closed,
            )
        )
    return result


async def count_negative_workers(session: AsyncSession) -> int:
    """How many workers owe money right now (``domain.counts_as_worker``, in SQL)."""
    count = await session.scalar(
        select(func.count())
        .select_from(Balance)
        .outerjoin(Person, Person.public_id == Balance.owner_public_id)
        .where(Balance.balance_cents < 0, or_(Person.role.is_(None), Person.role == "worker"))
    )
    return int(count or 0)


async def negative_workers(session: AsyncSession) -> list[Debtor]:
    rows = await session.execute(
        select(
            Balance.owner_public_id,
            Balance.balance_cents,
            Person.username,
            Person.full_name,
            Person.role,
        )
        .outerjoin(Person, Person.public_id == Balance.owner_public_id)
        .where(Balance.balance_cents < 0)
        .order_by(Balance.balance_cents, Balance.owner_public_id)
    )
    return [
        Debtor(row.owner_public_id, row.username, row.full_name, row.balance_cents)
        for row in rows
        if counts_as_worker(row.role)
    ]

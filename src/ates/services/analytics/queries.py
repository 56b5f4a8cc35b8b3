"""What the dashboard asks of the projections. Every answer reads a handful of
pre-aggregated rows: no query grows with the number of tasks or events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, Integer, column, func, or_, select, values
from sqlalchemy.ext.asyncio import AsyncSession

from ates.platform.events.ordering import stamp_time
from ates.platform.standing import Standing
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
    """Everything the dashboard shows for ``day``, in two round trips: one statement of
    scalar subqueries (each a primary-key or index range read), then the winning tasks."""
    week, month = week_period(day), month_period(day)
    periods = (day_period(day), week, month)
    row = (
        await session.execute(
            select(
                select(DailyEarnings.fees_cents - DailyEarnings.rewards_cents)
                .where(DailyEarnings.business_date == day)
                .scalar_subquery(),
                _negative_workers_count().scalar_subquery(),
                *(_best_in(*period.buckets(zone)) for period in periods),
            )
        )
    ).one()
    earnings, negative, *winners = row
    lines = await task_lines(session, {w for w in winners if w is not None})
    day_top, week_top, month_top = (lines.get(w or "") for w in winners)
    return Dashboard(
        day=day,
        management_earnings_cents=int(earnings or 0),
        negative_balance_workers=int(negative or 0),
        day_top=day_top,
        week_top=week_top,
        month_top=month_top,
        week=week,
        month=month,
    )


def _best_in(lo: Any, hi: Any) -> Any:
    """The id of the most expensive completion in buckets ``[lo, hi)``: at most ~3,000
    rows for a month, read by primary key range (``domain.Completion.rank`` in SQL)."""
    return (
        select(Top.task_public_id)
        .where(Top.bucket >= lo, Top.bucket < hi)
        .order_by(Top.reward_cents.desc(), Top.completed_at, Top.task_public_id)
        .limit(1)
        .scalar_subquery()
    )


async def top_tasks(
    session: AsyncSession, periods: Sequence[Period], zone: ZoneInfo
) -> list[TaskLine | None]:
    """The most expensive completed task of each period, in one query plus one lookup."""
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
    rows = (await session.execute(select(ranges.c.idx, _best_in(ranges.c.lo, ranges.c.hi)))).all()
    by_index: dict[int, str | None] = {row[0]: row[1] for row in rows}
    lines = await task_lines(session, {t for t in by_index.values() if t is not None})
    return [lines.get(by_index.get(i) or "") for i in range(len(periods))]


async def task_lines(session: AsyncSession, ids: set[str]) -> dict[str, TaskLine]:
    if not ids:
        return {}
    rows = await session.execute(
        select(
            Task.public_id, Task.title, Task.jira_id, Task.reward_cents, Task.completed_at
        ).where(Task.public_id.in_(ids), Task.completed_at.is_not(None))
    )
    return {
        row.public_id: TaskLine(
            task_public_id=row.public_id,
            title=row.title,
            jira_id=row.jira_id,
            reward_cents=row.reward_cents or 0,
            completed_at=row.completed_at,
        )
        for row in rows
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


async def last_closed_day(session: AsyncSession) -> date | None:
    """The latest day billing announced closed (``DayClosed``)."""
    last: date | None = await session.scalar(select(func.max(ClosedDay.business_date)))
    return last


def _negative_workers_count() -> Any:
    """How many workers owe money right now (``domain.counts_as_worker``, in SQL)."""
    return (
        select(func.count())
        .select_from(Balance)
        .outerjoin(Person, Person.public_id == Balance.owner_public_id)
        .where(Balance.balance_cents < 0, or_(Person.role.is_(None), Person.role == "worker"))
    )


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


async def standing(session: AsyncSession, public_id: str) -> Standing | None:
    """What analytics' copy of people says of someone (its pages honour it)."""
    person = await session.get(Person, public_id)
    if person is None:
        return None
    return Standing(
        person.role,
        stamp_time(person.role_stamp),
        person.active,
        stamp_time(person.active_stamp),
    )

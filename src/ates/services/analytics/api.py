"""The analytics JSON API (DESIGN.md §4), for admins only."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel

from ates.platform.api_errors import errors
from ates.platform.dates import today
from ates.platform.dependencies import RuntimeDep, require_roles
from ates.platform.params import Day
from ates.services.analytics import queries
from ates.services.analytics.domain import Period

router = APIRouter(
    prefix="/api",
    tags=["analytics"],
    dependencies=[Depends(require_roles("admin"))],
    responses=errors(401, 403),
)


class TaskOut(BaseModel):
    task_public_id: str
    title: str | None
    jira_id: str | None  # beyond DESIGN §4 (an added field): the issue asks for it
    reward_cents: int
    completed_at: dt.datetime  # UTC

    @classmethod
    def of(cls, line: queries.TaskLine | None) -> TaskOut | None:
        if line is None:
            return None
        return cls(
            task_public_id=line.task_public_id,
            title=line.title,
            jira_id=line.jira_id,
            reward_cents=line.reward_cents,
            completed_at=line.completed_at,
        )


class MostExpensiveOut(BaseModel):
    day: TaskOut | None
    week: TaskOut | None
    month: TaskOut | None


class DashboardOut(BaseModel):
    date: dt.date
    management_earnings_cents: int
    negative_balance_workers: int
    most_expensive: MostExpensiveOut


class DayTaskOut(BaseModel):
    date: dt.date
    task: TaskOut | None


class RangeOut(BaseModel):
    days: list[DayTaskOut]
    range: TaskOut | None


class DebtorOut(BaseModel):
    owner_public_id: str
    username: str | None
    full_name: str | None
    balance_cents: int


class NegativeBalancesOut(BaseModel):
    count: int
    workers: list[DebtorOut]


def chosen_period(first: dt.date, last: dt.date) -> Period:
    """The range of a request, or a 422 naming the field that is wrong."""
    if last < first:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "to: must not be before from")
    period = Period(first, last)
    if period.length > queries.MAX_RANGE_DAYS:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"to: a range covers at most {queries.MAX_RANGE_DAYS} days",
        )
    return period


@router.get("/dashboard")
async def get_dashboard(
    runtime: RuntimeDep,
    date: Annotated[Day | None, Query(description="A business day (default today).")] = None,
) -> DashboardOut:
    day = date or today(runtime.settings.zone)
    async with runtime.db.reader() as session:
        board = await queries.dashboard(session, day, runtime.settings.zone)
    return DashboardOut(
        date=board.day,
        management_earnings_cents=board.management_earnings_cents,
        negative_balance_workers=board.negative_balance_workers,
        most_expensive=MostExpensiveOut(
            day=TaskOut.of(board.day_top),
            week=TaskOut.of(board.week_top),
            month=TaskOut.of(board.month_top),
        ),
    )


@router.get("/most-expensive")
async def get_most_expensive(
    runtime: RuntimeDep,
    first: Annotated[Day, Query(alias="from", description="First business day.")],
    last: Annotated[Day, Query(alias="to", description="Last business day (included).")],
) -> RangeOut:
    period = chosen_period(first, last)
    async with runtime.db.reader() as session:
        days, overall = await queries.most_expensive_by_day(session, period, runtime.settings.zone)
    return RangeOut(
        days=[DayTaskOut(date=day, task=TaskOut.of(line)) for day, line in days],
        range=TaskOut.of(overall),
    )


@router.get("/negative-balances")
async def get_negative_balances(runtime: RuntimeDep) -> NegativeBalancesOut:
    async with runtime.db.reader() as session:
        debtors = await queries.negative_workers(session)
    return NegativeBalancesOut(
        count=len(debtors),
        workers=[DebtorOut(**asdict(debtor)) for debtor in debtors],
    )

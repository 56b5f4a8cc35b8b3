"""The billing JSON API (DESIGN.md §4 billing): parse, ask the books, answer.

Days are business days (``ATES_TIMEZONE``); a missing ``date`` means today there.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from ates.platform.api_errors import errors
from ates.platform.dates import today
from ates.platform.dependencies import CurrentUser, RuntimeDep, require_roles
from ates.platform.params import Day
from ates.platform.runtime import Runtime
from ates.platform.security import Principal
from ates.services.billing import commands, domain, queries
from ates.services.billing.models import Account

router = APIRouter(prefix="/api", tags=["billing"], responses=errors(401))

Accounting = Annotated[Principal, Depends(require_roles("admin", "accountant"))]
DayQuery = Annotated[
    Day | None, Query(alias="date", description="A business day, YYYY-MM-DD (default: today)")
]


class AccountOut(BaseModel):
    account_public_id: str
    owner_public_id: str
    balance_cents: int

    @classmethod
    def of(cls, account: Account) -> AccountOut:
        return cls(
            account_public_id=account.public_id,
            owner_public_id=str(account.owner_public_id),
            balance_cents=account.balance_cents,
        )


class TransactionOut(BaseModel):
    public_id: str
    kind: str
    debit_cents: int
    credit_cents: int
    description: str
    task_public_id: str | None
    business_date: date
    applied_at: datetime


class DayEarnings(BaseModel):
    date: date
    management_earnings_cents: int


class DashboardOut(BaseModel):
    date: date
    management_earnings_cents: int
    days: list[DayEarnings]


class PriceOut(BaseModel):
    assign_fee_cents: int
    reward_cents: int


class PayoutOut(BaseModel):
    owner_public_id: str
    amount_cents: int
    transaction_public_id: str
    business_date: date  # the day paid for: a close pays every open day up to its own


class DayCloseOut(BaseModel):
    business_date: date
    closed_at: datetime
    newly_closed: bool
    also_closed: list[date]
    paid_cents: int
    payouts: list[PayoutOut]


async def _account(session: AsyncSession, owner: str, *, mine: bool) -> Account:
    account = await queries.account_of(session, owner)
    if account is None:
        detail = (
            "you have no account yet: billing has not heard of you"
            if mine
            else f"no account for person {owner}"
        )
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=detail)
    return account


def _log(movements: list[queries.Movement]) -> list[TransactionOut]:
    return [TransactionOut.model_validate(m.to_json()) for m in movements]


@router.get("/accounts/me", responses=errors(404))
async def my_account(user: CurrentUser, runtime: RuntimeDep) -> AccountOut:
    async with runtime.db.reader() as session:
        return AccountOut.of(await _account(session, str(user.public_id), mine=True))


# A position in the ledger (transaction ids are int4 on PostgreSQL).
LogCursor = Annotated[
    int | None, Query(ge=1, le=2**31 - 1, description="Where the page starts (from Link)")
]
LogLimit = Annotated[int, Query(ge=1, le=queries.MAX_LOG, description="Movements per page")]


async def _day_log(
    request: Request,
    response: Response,
    runtime: Runtime,
    owner: str,
    *,
    mine: bool,
    day: date | None,
    limit: int,
    cursor: int | None,
) -> list[TransactionOut]:
    """A page of the day's audit log; more pages are named by ``Link: <…>; rel="next"``
    (RFC 8288), as the task list does."""
    async with runtime.db.reader() as session:
        account = await _account(session, owner, mine=mine)
        page = await queries.day_log_page(
            session, account, day or today(runtime.settings.zone), limit=limit, cursor=cursor
        )
    if page.next_cursor is not None:
        next_url = request.url.include_query_params(cursor=page.next_cursor)
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return _log(page.movements)


@router.get("/accounts/me/transactions", responses=errors(404))
async def my_transactions(
    request: Request,
    response: Response,
    user: CurrentUser,
    runtime: RuntimeDep,
    day: DayQuery = None,
    limit: LogLimit = queries.MAX_LOG,
    cursor: LogCursor = None,
) -> list[TransactionOut]:
    return await _day_log(
        request,
        response,
        runtime,
        str(user.public_id),
        mine=True,
        day=day,
        limit=limit,
        cursor=cursor,
    )


OwnerPath = Annotated[uuid.UUID, Path(description="The person's public id")]


@router.get("/accounts/{owner_public_id}", responses=errors(403, 404))
async def account(owner_public_id: OwnerPath, _: Accounting, runtime: RuntimeDep) -> AccountOut:
    async with runtime.db.reader() as session:
        return AccountOut.of(await _account(session, str(owner_public_id), mine=False))


@router.get("/accounts/{owner_public_id}/transactions", responses=errors(403, 404))
async def account_transactions(
    request: Request,
    response: Response,
    owner_public_id: OwnerPath,
    _: Accounting,
    runtime: RuntimeDep,
    day: DayQuery = None,
    limit: LogLimit = queries.MAX_LOG,
    cursor: LogCursor = None,
) -> list[TransactionOut]:
    return await _day_log(
        request,
        response,
        runtime,
        str(owner_public_id),
        mine=False,
        day=day,
        limit=limit,
        cursor=cursor,
    )


@router.get("/dashboard", responses=errors(403))
async def dashboard(
    _: Accounting,
    runtime: RuntimeDep,
    day: DayQuery = None,
    days_back: Annotated[
        int, Query(alias="days", ge=1, le=queries.MAX_DAYS, description="Days listed")
    ] = 7,
) -> DashboardOut:
    last = day or today(runtime.settings.zone)
    listed = domain.day_range(last, days_back)
    async with runtime.db.reader() as session:
        earnings = await queries.earnings_by_day(session, listed)
    return DashboardOut(
        date=last,
        management_earnings_cents=earnings[last],
        days=[DayEarnings(date=d, management_earnings_cents=earnings[d]) for d in listed],
    )


@router.get("/tasks/{task_public_id}/price", responses=errors(404))
async def task_price(
    task_public_id: Annotated[uuid.UUID, Path()], _: CurrentUser, runtime: RuntimeDep
) -> PriceOut:
    async with runtime.db.reader() as session:
        task = await queries.task_price(session, str(task_public_id))
    if task is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no price for task {task_public_id}")
    return PriceOut(assign_fee_cents=task.assign_fee_cents, reward_cents=task.reward_cents)


@router.post("/days/{date}/close", responses=errors(403))
async def close_day(
    day: Annotated[Day, Path(alias="date", description="The business day to close, YYYY-MM-DD")],
    _: Accounting,
    runtime: RuntimeDep,
) -> DayCloseOut:
    try:
        async with runtime.uow() as uow:
            result = await commands.close_day(uow, day, now=datetime.now(UTC))
    except domain.DayRuleError as error:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"date: {error}"
        ) from error
    return close_out(result)


def close_out(result: commands.DayClose) -> DayCloseOut:
    return DayCloseOut(
        business_date=result.business_date,
        closed_at=result.closed_at,
        newly_closed=result.newly_closed,
        also_closed=result.also_closed,
        paid_cents=result.paid_cents,
        payouts=[PayoutOut(**asdict(payout)) for payout in result.payouts],
    )

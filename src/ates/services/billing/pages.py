"""Billing's HTML pages (B1, B6, B8): my account by day for everyone; the company view —
management earnings today and per day, every account, closing a day — for admins and
accountants. Forms post, then redirect (303) with a flash message."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from ates.platform.money import format_cents
from ates.platform.pages import PageUser, page_roles
from ates.platform.params import parse_day
from ates.platform.security import Principal
from ates.platform.web import flash, render
from ates.services.billing import days, domain, ledger, queries
from ates.services.billing.api import RuntimeDep, today
from ates.services.billing.models import Account

router = APIRouter(include_in_schema=False)

ACCOUNTING = ("admin", "accountant")
AccountingPage = Annotated[Principal, Depends(page_roles(*ACCOUNTING))]
PEOPLE_PAGE = 100


def _day(request: Request, value: str | None, fallback: date) -> date:
    """The ``date`` asked for; a bad one is said so and today is shown instead."""
    if not value:
        return fallback
    try:
        return parse_day(value)
    except ValueError as error:
        flash(request, f"date: {error}; showing today.", "error")
        return fallback


async def _account_page(
    request: Request,
    runtime: Any,
    user: Principal,
    account: Account | None,
    day: date,
    *,
    heading: str,
    base_url: str,
) -> HTMLResponse:
    movements: list[queries.Movement] = []
    if account is not None:
        async with runtime.db.reader() as session:
            movements = await queries.day_log(session, account, day)
    zone = runtime.settings.zone
    return render(
        request,
        "account.html",
        user=user,
        heading=heading,
        account=account,
        day=day,
        base_url=base_url,
        previous_day=day - timedelta(days=1),
        next_day=day + timedelta(days=1),
        movements=[
            {**m.to_json(), "time": m.applied_at.astimezone(zone).strftime("%H:%M")}
            for m in movements
        ],
        accounting=user.has_role(*ACCOUNTING),
    )


@router.get("/", response_class=HTMLResponse)
async def home(
    request: Request,
    user: PageUser,
    runtime: RuntimeDep,
    day: Annotated[str | None, Query(alias="date")] = None,
) -> HTMLResponse:
    if user.has_role(*ACCOUNTING):
        return await company(request, user, runtime, day)
    return await my_account(request, user, runtime, day)


@router.get("/me", response_class=HTMLResponse)
async def my_account(
    request: Request,
    user: PageUser,
    runtime: RuntimeDep,
    day: Annotated[str | None, Query(alias="date")] = None,
) -> HTMLResponse:
    async with runtime.db.reader() as session:
        account = await queries.account_of(session, str(user.public_id))
    return await _account_page(
        request,
        runtime,
        user,
        account,
        _day(request, day, today(runtime)),
        heading="My account",
        base_url="/me",
    )


@router.get("/accounts/{owner_public_id}", response_class=HTMLResponse)
async def person_account(
    request: Request,
    owner_public_id: uuid.UUID,
    user: AccountingPage,
    runtime: RuntimeDep,
    day: Annotated[str | None, Query(alias="date")] = None,
) -> HTMLResponse:
    async with runtime.db.reader() as session:
        account = await queries.account_of(session, str(owner_public_id))
    name = (account.owner_name or account.owner_username) if account else None
    return await _account_page(
        request,
        runtime,
        user,
        account,
        _day(request, day, today(runtime)),
        heading=f"Account of {name or owner_public_id}",
        base_url=f"/accounts/{owner_public_id}",
    )


@router.get("/company", response_class=HTMLResponse)
async def company(
    request: Request,
    user: AccountingPage,
    runtime: RuntimeDep,
    day: Annotated[str | None, Query(alias="date")] = None,
    days_back: Annotated[int, Query(alias="days", ge=1, le=queries.MAX_DAYS)] = 14,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,  # beyond int4: no such page
) -> HTMLResponse:
    now = today(runtime)
    last = _day(request, day, now)
    listed = domain.day_range(last, days_back)
    async with runtime.db.reader() as session:
        earnings = await queries.earnings_by_day(session, [now, *listed])
        closed = await queries.closed_days(session, listed)
        closed_through = (await ledger.books(session, lock="none")).closed_through
        people = await queries.people(session, limit=PEOPLE_PAGE + 1, offset=offset)
    return render(
        request,
        "company.html",
        user=user,
        today=now,
        today_earnings=earnings[now],
        last=last,
        days_back=days_back,
        rows=[
            {
                "date": d,
                "earnings": earnings[d],
                "closed": closed.get(d),
                # days up to the last close are shut even when nothing happened on them
                "shut": closed_through is not None and d <= closed_through,
            }
            for d in listed
        ],
        people=people[:PEOPLE_PAGE],
        next_offset=offset + PEOPLE_PAGE if len(people) > PEOPLE_PAGE else None,
        close_default=now - timedelta(days=1),
    )


@router.post("/days/close")
async def close_day(
    request: Request,
    user: AccountingPage,
    runtime: RuntimeDep,
    day: Annotated[str, Form(alias="date")] = "",
) -> RedirectResponse:
    back = RedirectResponse("/company", status_code=303)
    try:
        target = parse_day(day)
    except ValueError as error:
        flash(request, f"Not closed. date: {error}.", "error")
        return back
    try:
        async with runtime.uow() as uow:
            result = await days.close_day(uow, target, now=datetime.now(UTC))
    except domain.DayRuleError as error:
        flash(request, f"Not closed. {error}", "error")
        return back
    if not result.newly_closed:
        flash(request, f"{target.isoformat()} was already closed; nothing paid again.")
        return back
    earlier = (
        f" (and the open days before it: {len(result.also_closed)})" if result.also_closed else ""
    )
    flash(
        request,
        f"Closed {target.isoformat()}{earlier}: {len(result.payouts)} payouts, "
        f"{format_cents(result.paid_cents)} paid out.",
    )
    return back

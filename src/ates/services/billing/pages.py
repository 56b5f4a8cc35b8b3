"""Billing's HTML pages (B1, B6, B8): my account by day for everyone (the balance at the
start and end of the day, the day's total, its audit log); the company view —
management earnings today and per day, each day's movements by person, every account,
closing a day — for admins and accountants; and the money of one task. Forms post, then
redirect (303) with a flash message."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from ates.platform.closing import day_state, late_booking_note
from ates.platform.dates import format_day, parse_page_day, today
from ates.platform.dependencies import RuntimeDep
from ates.platform.money import format_cents
from ates.platform.pages import PageUser, page_roles
from ates.platform.params import is_uuid, parse_day
from ates.platform.security import Principal
from ates.platform.web import error_page, flash, render
from ates.services.billing import commands, domain, ledger, queries
from ates.services.billing.models import Account

router = APIRouter(include_in_schema=False)

ACCOUNTING = ("admin", "accountant")
AccountingPage = Annotated[Principal, Depends(page_roles(*ACCOUNTING))]
PEOPLE_PAGE = 100
DateQuery = Annotated[str | None, Query(alias="date")]  # the day a page shows


def _day(request: Request, value: str | None, fallback: date) -> date:
    """The ``date`` asked for; a bad one is said so and today is shown instead."""
    if not value:
        return fallback
    try:
        return parse_page_day(value)
    except ValueError as error:
        flash(request, f"Day: {error}; showing today.", "error")
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
    figures = None
    async with runtime.db.reader() as session:
        if account is not None:
            movements = await queries.day_log(session, account, day, show_day=format_day)
            figures = await queries.day_figures(session, account, day)
        books = await ledger.books(session, lock="none")
    now = today(runtime.settings.zone)
    return render(
        request,
        "account.html",
        user=user,
        heading=heading,
        account=account,
        day=day,
        is_today=day == now,
        figures=figures,
        base_url=base_url,
        previous_day=day - timedelta(days=1),
        next_day=day + timedelta(days=1),
        movements=movements,
        late_note=late_booking_note(books.closed_through, now),
        accounting=user.has_role(*ACCOUNTING),
    )


@router.get("/", response_class=HTMLResponse)
async def home(
    request: Request,
    user: PageUser,
    runtime: RuntimeDep,
    day: DateQuery = None,
) -> HTMLResponse:
    if user.has_role(*ACCOUNTING):
        return await company(request, user, runtime, day)
    return await my_account(request, user, runtime, day)


@router.get("/me", response_class=HTMLResponse)
async def my_account(
    request: Request,
    user: PageUser,
    runtime: RuntimeDep,
    day: DateQuery = None,
) -> HTMLResponse:
    async with runtime.db.reader() as session:
        account = await queries.account_of(session, str(user.public_id))
    return await _account_page(
        request,
        runtime,
        user,
        account,
        _day(request, day, today(runtime.settings.zone)),
        heading="My account",
        base_url="/me",
    )


@router.get("/accounts/{owner_public_id}", response_class=HTMLResponse)
async def person_account(
    request: Request,
    owner_public_id: uuid.UUID,
    user: AccountingPage,
    runtime: RuntimeDep,
    day: DateQuery = None,
) -> HTMLResponse:
    async with runtime.db.reader() as session:
        account = await queries.account_of(session, str(owner_public_id))
    name = (account.owner_name or account.owner_username) if account else None
    return await _account_page(
        request,
        runtime,
        user,
        account,
        _day(request, day, today(runtime.settings.zone)),
        heading=f"Account of {name or owner_public_id}",
        base_url=f"/accounts/{owner_public_id}",
    )


@router.get("/company", response_class=HTMLResponse)
async def company(
    request: Request,
    user: AccountingPage,
    runtime: RuntimeDep,
    day: DateQuery = None,
    days_back: Annotated[int, Query(alias="days", ge=1, le=queries.MAX_DAYS)] = 14,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,  # beyond int4: no such page
) -> HTMLResponse:
    now = today(runtime.settings.zone)
    async with runtime.db.reader() as session:
        closed_through = (await ledger.books(session, lock="none")).closed_through
        earliest = await queries.earliest_movement(session)
        # after today was closed, movements go to the first open day: show it too
        first_open = closed_through + timedelta(days=1) if closed_through else None
        default_last = first_open if first_open and first_open > now else now
        last = _day(request, day, default_last)
        listed = domain.day_range(last, days_back)
        earnings = await queries.earnings_by_day(session, [now, *listed])
        closed = await queries.closed_days(session, listed)
        people = await queries.people(session, limit=PEOPLE_PAGE + 1, offset=offset)
    closable = domain.first_closable(
        closed_through=closed_through, earliest_movement=earliest, today=now
    )
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
                "state": day_state(d, closed=d in closed, last_closed=closed_through),
            }
            for d in listed
        ],
        people=people[:PEOPLE_PAGE],
        next_offset=offset + PEOPLE_PAGE if len(people) > PEOPLE_PAGE else None,
        closable=closable,
        closed_through=closed_through,
        late_note=late_booking_note(closed_through, now),
    )


@router.get("/days/{day}", response_class=HTMLResponse)
async def day_detail(
    request: Request, day: str, user: AccountingPage, runtime: RuntimeDep
) -> HTMLResponse:
    """One business day: its earnings, whether it is closed, and who moved how much."""
    try:
        chosen = parse_day(day)
    except ValueError as error:
        return error_page(request, 404, f"There is no such day: {error}.")
    async with runtime.db.reader() as session:
        closed_through = (await ledger.books(session, lock="none")).closed_through
        earnings = (await queries.earnings_by_day(session, [chosen]))[chosen]
        closed = (await queries.closed_days(session, [chosen])).get(chosen)
        people = await queries.people_on(session, chosen)
    return render(
        request,
        "day.html",
        user=user,
        day=chosen,
        earnings=earnings,
        closed=closed,
        state=day_state(chosen, closed=closed is not None, last_closed=closed_through),
        people=people,
        previous_day=chosen - timedelta(days=1),
        next_day=chosen + timedelta(days=1),
    )


@router.get("/tasks/{task_public_id}", response_class=HTMLResponse)
async def task_money(
    request: Request, task_public_id: str, user: PageUser, runtime: RuntimeDep
) -> HTMLResponse:
    """The price of a task and the money it moved: every account's for admins and
    accountants, the person's own for anyone else."""
    accounting = user.has_role(*ACCOUNTING)
    async with runtime.db.reader() as session:
        task = (
            await queries.task_price(session, task_public_id) if is_uuid(task_public_id) else None
        )
        if task is None:
            return error_page(request, 404, "Billing has not heard of this task.")
        own = None if accounting else await queries.account_of(session, str(user.public_id))
        movements = (
            await queries.task_movements(
                session,
                task_public_id,
                owner_account_id=None if accounting else (own.id if own else -1),
                show_day=format_day,
            )
            if accounting or own is not None
            else []
        )
    return render(
        request,
        "task.html",
        user=user,
        task=task,
        label=domain.task_label(task.title, task.jira_id, task.public_id),
        movements=movements,
        accounting=accounting,
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
        target = parse_page_day(day)
    except ValueError as error:
        flash(request, f"Not closed. Day: {error}.", "error")
        return back
    try:
        async with runtime.uow() as uow:
            result = await commands.close_day(uow, target, now=datetime.now(UTC))
    except domain.DayRuleError:
        flash(
            request,
            f"Not closed. {format_day(target)} is in the future: only today or a past day "
            "can be closed.",
            "error",
        )
        return back
    shown = format_day(target)
    if not result.newly_closed:
        flash(request, f"{shown} was already closed; nothing paid again.")
        return back
    earlier = (
        f" (and the open days before it: {len(result.also_closed)})" if result.also_closed else ""
    )
    flash(
        request,
        f"Closed {shown}{earlier}: {len(result.payouts)} payouts, "
        f"{format_cents(result.paid_cents)} paid out.",
    )
    return back

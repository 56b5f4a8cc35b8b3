"""The admin dashboard as a server-rendered page (DESIGN.md A1-A3)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse
from starlette.requests import Request

from ates.platform.closing import day_state, late_booking_note
from ates.platform.dates import parse_page_day, today
from ates.platform.dependencies import RuntimeDep
from ates.platform.pages import page_roles
from ates.platform.rebuild import read_generation
from ates.platform.security import Principal
from ates.platform.web import flash, render
from ates.services.analytics import queries
from ates.services.analytics.chart import bar_chart
from ates.services.analytics.domain import (
    Period,
    day_label,
    period_label,
    whole_dollars,
)

router = APIRouter(include_in_schema=False)

Admin = Annotated[Principal, Depends(page_roles("admin"))]
DEFAULT_RANGE_DAYS = 14


def _range(day: dt.date, first: dt.date | None, last: dt.date | None) -> tuple[Period, str | None]:
    """The range the person chose, or the two weeks ending on ``day`` with a reason."""
    last = last or day
    first = first or last - dt.timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if last < first:
        return Period(day - dt.timedelta(days=DEFAULT_RANGE_DAYS - 1), day), (
            "The range ends before it starts ('to' is before 'from'): showing the last two weeks."
        )
    if (last - first).days + 1 > queries.MAX_RANGE_DAYS:
        first = last - dt.timedelta(days=queries.MAX_RANGE_DAYS - 1)
        return Period(first, last), f"A range covers at most {queries.MAX_RANGE_DAYS} days."
    return Period(first, last), None


def _typed(request: Request, label: str, value: str) -> dt.date | None:
    """A day typed into the form (26.11.2026, or ISO from a link); a bad one is named
    in a message and left out."""
    if not value:
        return None
    try:
        return parse_page_day(value)
    except ValueError as error:
        flash(request, f"{label}: {error}; left out.", "error")
        return None


@router.get("/", response_class=HTMLResponse)
async def dashboard_page(
    request: Request,
    runtime: RuntimeDep,
    user: Admin,
    date: str = "",
    first: Annotated[str, Query(alias="from")] = "",
    last: Annotated[str, Query(alias="to")] = "",
) -> HTMLResponse:
    zone = runtime.settings.zone
    day = _typed(request, "Day", date) or today(runtime.settings.zone)
    period, range_problem = _range(
        day, _typed(request, "Range from", first), _typed(request, "to", last)
    )
    async with runtime.db.reader() as session:
        board = await queries.dashboard(session, day, zone)
        debtors = await queries.negative_workers(session)
        lines, overall = await queries.most_expensive_by_day(session, period, zone)
        money = await queries.money_by_day(session, period)
        generation = await read_generation(session, runtime.spec.name)
        last_closed = await queries.last_closed_day(session)
    chart = bar_chart([(day_label(m.day), m.management_earnings_cents) for m in money])
    context: dict[str, Any] = {
        "user": user,
        "board": board,
        "debtors": debtors,
        "period": period,
        "period_label": period_label(period),
        "range_problem": range_problem,
        "lines": lines,
        "overall": overall,
        "money": money,
        "chart": chart,
        "rebuilding": generation.rebuilding is not None,
        "states": {
            m.day: day_state(m.day, closed=m.closed, last_closed=last_closed) for m in money
        },
        "late_note": late_booking_note(last_closed, today(runtime.settings.zone)),
        "day_label": day_label,
        "period_name": period_label,
        "dollars": whole_dollars,
    }
    return render(request, "analytics/dashboard.html", **context)

"""Billing's pages: my account by day for everyone, the company view for admins and
accountants (B1, B6, B8)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from ates.config import Settings
from tests.integration.billing import events as ev
from tests.integration.billing.books import Books
from tests.support import Harness, page_cookie

pytestmark = pytest.mark.integration


async def test_a_worker_sees_their_balance_and_todays_log(
    billing: Harness, feed: Books, offline_settings: Settings
) -> None:
    worker, task = ev.new_id(), ev.new_id()
    await feed.apply(ev.task_created(task, "Feed the parrots", "POPUG-9"))
    await feed.apply(ev.task_assigned(task, worker))
    fee, _ = await feed.price(task)
    billing.client.cookies.update(await page_cookie(billing.runtime, role="worker", sub=worker))

    page = await billing.client.get("/")
    assert page.status_code == 200
    assert f'data-balance="{-fee}"' in page.text
    # the title links to the task's page (tasks) and to its money here
    tasks_page = f"http://127.0.0.1:8001/tasks/{task}"
    assert f'assigned: <a href="{tasks_page}">[POPUG-9] Feed the parrots</a>, fee' in page.text
    assert f'<a href="/tasks/{task}">its money</a>' in page.text
    # the day in figures: it started at 0 and the fee took it down
    assert f'data-testid="start">{money(0)}<' in page.text
    assert f'data-testid="total">{money(-fee)}<' in page.text
    assert f'data-testid="end">{money(-fee)}<' in page.text

    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    page = await billing.client.get("/me", params={"date": yesterday.isoformat()})
    assert "No movements on this day." in page.text
    assert f"<h2>{yesterday:%d.%m.%Y}</h2>" in page.text
    assert f'data-testid="end">{money(0)}<' in page.text

    bad = await billing.client.get("/me", params={"date": "tomorrow"})
    assert "Day: &#39;tomorrow&#39; is not a day (write it like 26.11.2026)" in bad.text
    typed = await billing.client.get("/me", params={"date": f"{yesterday:%d.%m.%Y}"})
    assert f"<h2>{yesterday:%d.%m.%Y}</h2>" in typed.text

    own = await billing.client.get(f"/tasks/{task}")
    assert own.status_code == 200
    assert f'data-testid="fee">{money(fee)}<' in own.text
    assert len(re.findall(r"<tr data-transaction=", own.text)) == 1

    company = await billing.client.get("/company")
    assert company.status_code == 403
    assert "admins and accountants only" in company.text
    other = await billing.client.get(f"/accounts/{ev.new_id()}")
    assert other.status_code == 403


async def test_without_a_session_pages_send_you_to_sign_in(billing: Harness) -> None:
    response = await billing.client.get("/company")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


async def test_the_company_view_and_closing_a_day(
    billing: Harness, feed: Books, offline_settings: Settings
) -> None:
    worker, task = ev.new_id(), ev.new_id()
    await feed.apply(ev.account_created(worker, name="Kesha"))
    await feed.apply(ev.task_assigned(task, worker))
    await feed.apply(ev.task_completed(task, worker))
    fee, reward = await feed.price(task)
    billing.client.cookies.update(await page_cookie(billing.runtime, role="accountant"))

    page = await billing.client.get("/")
    assert page.status_code == 200
    assert f'data-today-earnings="{fee - reward}"' in page.text
    assert "Kesha" in page.text
    assert len(re.findall(r"<tr data-day=", page.text)) == 14

    person = await billing.client.get(f"/accounts/{worker}")
    assert "Account of Kesha" in person.text
    assert f'data-balance="{reward - fee}"' in person.text

    # each day links to its detail: who moved how much
    today = datetime.now(UTC).date()
    assert f'<a href="/days/{today.isoformat()}">{today:%d.%m.%Y}</a>' in page.text
    detail = await billing.client.get(f"/days/{today.isoformat()}")
    assert detail.status_code == 200
    row = detail.text.split(f'<tr data-owner="{worker}">')[1].split("</tr>")[0]
    assert money(fee) in row and money(reward) in row and money(reward - fee) in row
    # the close form offers the first day that can be closed: today, the books' first day
    assert f'name="date" value="{today:%d.%m.%Y}" size="10"' in page.text

    money_of_task = await billing.client.get(f"/tasks/{task}")
    assert len(re.findall(r"<tr data-transaction=", money_of_task.text)) == 2
    assert "Kesha" in money_of_task.text

    closed = await billing.client.post(  # typed as the pages write days
        "/days/close", data={"date": f"{today:%d.%m.%Y}"}, follow_redirects=True
    )
    assert f"Closed {today:%d.%m.%Y}" in closed.text
    assert "1 payouts" in closed.text
    assert "there is nothing to close until tomorrow" in closed.text
    # after today's close, where later movements go is said (as analytics says it)
    assert f"{today:%d.%m.%Y} is already closed" in closed.text
    again = await billing.client.post(
        "/days/close", data={"date": today.isoformat()}, follow_redirects=True
    )
    assert "was already closed; nothing paid again" in again.text
    future = today + timedelta(days=1)
    refused = await billing.client.post(
        "/days/close", data={"date": future.isoformat()}, follow_redirects=True
    )
    assert f"Not closed. {future:%d.%m.%Y} is in the future" in refused.text
    assert await feed.balance(worker) == 0
    # days before the books' first day were never closed: shown as such, not as closed
    view = await billing.client.get("/company")
    earlier = (today - timedelta(days=3)).isoformat()
    assert f'<tr data-day="{earlier}" data-state="before">' in view.text
    assert f'<tr data-day="{today.isoformat()}" data-state="closed">' in view.text
    # the first open day (tomorrow) is listed, where late movements will be booked
    assert f'<tr data-day="{future.isoformat()}" data-state="open">' in view.text


def money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d} $"

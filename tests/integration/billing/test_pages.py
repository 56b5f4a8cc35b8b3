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
    assert "assigned: [POPUG-9] Feed the parrots, fee" in page.text

    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    page = await billing.client.get("/me", params={"date": yesterday})
    assert "No movements on this day." in page.text

    bad = await billing.client.get("/me", params={"date": "tomorrow"})
    assert "date: &#39;tomorrow&#39; is not a date" in bad.text

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

    today = datetime.now(UTC).date().isoformat()
    closed = await billing.client.post("/days/close", data={"date": today}, follow_redirects=True)
    assert f"Closed {today}" in closed.text
    assert "1 payouts" in closed.text
    again = await billing.client.post("/days/close", data={"date": today}, follow_redirects=True)
    assert "was already closed; nothing paid again" in again.text
    future = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    refused = await billing.client.post("/days/close", data={"date": future}, follow_redirects=True)
    assert f"Not closed. {future} is in the future" in refused.text
    assert await feed.balance(worker) == 0
    # days before the last close are shut too: a late movement goes to the next open day
    earlier = (datetime.now(UTC).date() - timedelta(days=3)).isoformat()
    view = await billing.client.get("/company")
    row = rf'<tr data-day="{earlier}">(?:(?!</tr>).)*closed · nothing to pay'
    assert re.search(row, view.text, re.S)

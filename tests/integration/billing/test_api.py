"""The billing JSON API (DESIGN.md §4 billing) over real HTTP on a real database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.billing import events as ev
from tests.integration.billing.books import Books
from tests.support import Harness, TokenFactory

pytestmark = pytest.mark.integration


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


async def _worker_with_task(feed: Books, *, complete: bool) -> tuple[str, str]:
    worker, task = ev.new_id(), ev.new_id()
    await feed.apply(ev.account_created(worker, name="Kesha"))
    await feed.apply(ev.task_created(task))
    await feed.apply(ev.task_assigned(task, worker))
    if complete:
        await feed.apply(ev.task_completed(task, worker))
    return worker, task


async def test_my_account_and_todays_audit_log(
    billing: Harness, feed: Books, tokens: TokenFactory
) -> None:
    worker, task = await _worker_with_task(feed, complete=True)
    fee, reward = await feed.price(task)
    headers = tokens.headers("worker", worker)

    response = await billing.client.get("/api/accounts/me", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["owner_public_id"] == worker
    assert body["balance_cents"] == reward - fee
    assert uuid.UUID(body["account_public_id"])

    response = await billing.client.get(
        "/api/accounts/me/transactions", params={"date": _today()}, headers=headers
    )
    assert response.status_code == 200
    log = response.json()
    assert [(t["kind"], t["debit_cents"], t["credit_cents"]) for t in log] == [
        ("assign_fee", fee, 0),
        ("reward", 0, reward),
    ]
    assert set(log[0]) == {
        "public_id",
        "kind",
        "debit_cents",
        "credit_cents",
        "description",
        "task_public_id",
        "business_date",
        "applied_at",
    }
    assert log[0]["task_public_id"] == task
    assert "[POPUG-42] Sharpen the beak" in log[0]["description"]
    assert log[0]["business_date"] == _today()

    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    response = await billing.client.get(
        "/api/accounts/me/transactions", params={"date": yesterday}, headers=headers
    )
    assert response.json() == []


async def test_errors_are_json_with_a_reason(billing: Harness, tokens: TokenFactory) -> None:
    client = billing.client
    assert (await client.get("/api/accounts/me")).status_code == 401
    response = await client.get("/api/accounts/me", headers=tokens.headers("worker"))
    assert response.status_code == 404
    assert "no account yet" in response.json()["detail"]
    response = await client.get(
        "/api/accounts/me/transactions",
        params={"date": "03.03.2026"},
        headers=tokens.headers("worker"),
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("date:")


async def test_other_accounts_are_for_admins_and_accountants(
    billing: Harness, feed: Books, tokens: TokenFactory
) -> None:
    worker, _ = await _worker_with_task(feed, complete=False)
    client = billing.client
    url = f"/api/accounts/{worker}"
    assert (await client.get(url, headers=tokens.headers("worker"))).status_code == 403
    assert (await client.get(url, headers=tokens.headers("manager"))).status_code == 403
    for role in ("admin", "accountant"):
        response = await client.get(url, headers=tokens.headers(role))
        assert response.status_code == 200
        assert response.json()["owner_public_id"] == worker
        response = await client.get(f"{url}/transactions", headers=tokens.headers(role))
        assert [t["kind"] for t in response.json()] == ["assign_fee"]
    unknown = await client.get(f"/api/accounts/{uuid.uuid4()}", headers=tokens.headers("admin"))
    assert unknown.status_code == 404
    bad = await client.get("/api/accounts/polly", headers=tokens.headers("admin"))
    assert bad.status_code == 422
    assert bad.json()["detail"].startswith("owner_public_id:")


async def test_dashboard_shows_management_earnings_by_day(
    billing: Harness, feed: Books, tokens: TokenFactory
) -> None:
    _, paid = await _worker_with_task(feed, complete=True)
    _, unpaid = await _worker_with_task(feed, complete=False)
    fees = (await feed.price(paid))[0] + (await feed.price(unpaid))[0]
    expected = fees - (await feed.price(paid))[1]
    headers = tokens.headers("accountant")

    response = await billing.client.get("/api/dashboard", params={"days": 3}, headers=headers)
    assert response.status_code == 200
    body = response.json()
    today = datetime.now(UTC).date()
    assert body["date"] == today.isoformat()
    assert body["management_earnings_cents"] == expected
    assert body["days"] == [
        {"date": today.isoformat(), "management_earnings_cents": expected},
        {"date": (today - timedelta(days=1)).isoformat(), "management_earnings_cents": 0},
        {"date": (today - timedelta(days=2)).isoformat(), "management_earnings_cents": 0},
    ]
    past = await billing.client.get(
        "/api/dashboard", params={"date": "2026-01-01", "days": 1}, headers=headers
    )
    assert past.json() == {
        "date": "2026-01-01",
        "management_earnings_cents": 0,
        "days": [{"date": "2026-01-01", "management_earnings_cents": 0}],
    }
    too_many = await billing.client.get("/api/dashboard", params={"days": 0}, headers=headers)
    assert too_many.status_code == 422 and too_many.json()["detail"].startswith("days:")
    denied = await billing.client.get("/api/dashboard", headers=tokens.headers("worker"))
    assert denied.status_code == 403


async def test_a_tasks_price(billing: Harness, feed: Books, tokens: TokenFactory) -> None:
    _, task = await _worker_with_task(feed, complete=False)
    fee, reward = await feed.price(task)
    response = await billing.client.get(f"/api/tasks/{task}/price", headers=tokens.headers())
    assert response.json() == {"assign_fee_cents": fee, "reward_cents": reward}
    missing = await billing.client.get(f"/api/tasks/{uuid.uuid4()}/price", headers=tokens.headers())
    assert missing.status_code == 404


async def test_closing_a_day_by_hand(billing: Harness, feed: Books, tokens: TokenFactory) -> None:
    earner, _ = await _worker_with_task(feed, complete=True)
    debtor, _ = await _worker_with_task(feed, complete=False)
    earned = await feed.balance(earner)
    client = billing.client
    today = datetime.now(UTC).date()
    url = f"/api/days/{today.isoformat()}/close"

    assert (await client.post(url, headers=tokens.headers("worker"))).status_code == 403
    tomorrow = (today + timedelta(days=1)).isoformat()
    future = await client.post(f"/api/days/{tomorrow}/close", headers=tokens.headers("admin"))
    assert future.status_code == 422
    assert future.json()["detail"].startswith(f"date: {tomorrow} is in the future")
    bad = await client.post("/api/days/someday/close", headers=tokens.headers("admin"))
    assert bad.status_code == 422 and bad.json()["detail"].startswith("date:")

    first = await client.post(url, headers=tokens.headers("accountant"))
    assert first.status_code == 200
    body = first.json()
    assert body["business_date"] == today.isoformat()
    assert body["newly_closed"] is True
    assert body["paid_cents"] == earned
    assert [
        (p["owner_public_id"], p["amount_cents"], p["business_date"]) for p in body["payouts"]
    ] == [(earner, earned, today.isoformat())]
    again = (await client.post(url, headers=tokens.headers("admin"))).json()
    assert again["newly_closed"] is False
    assert again["payouts"] == body["payouts"]
    assert await feed.balance(earner) == 0
    assert await feed.balance(debtor) < 0
    assert await feed.problems() == []


async def test_a_long_day_comes_in_pages_named_by_link(
    billing: Harness, feed: Books, tokens: TokenFactory
) -> None:
    """No movement of a day is left out however many there are: the log pages on."""
    worker, _ = await _worker_with_task(feed, complete=False)
    for _ in range(4):
        task = ev.new_id()
        await feed.apply(ev.task_created(task))
        await feed.apply(ev.task_assigned(task, worker))
    everything = (
        await billing.client.get(
            f"/api/accounts/{worker}/transactions", headers=tokens.headers("accountant")
        )
    ).json()
    assert len(everything) == 5

    pages: list[list[str]] = []
    url: str | None = f"/api/accounts/{worker}/transactions?limit=2"
    while url is not None:
        response = await billing.client.get(url, headers=tokens.headers("accountant"))
        assert response.status_code == 200
        pages.append([t["public_id"] for t in response.json()])
        url = response.links.get("next", {}).get("url")
    assert [len(page) for page in pages] == [2, 2, 1]
    assert [t for page in pages for t in page] == [t["public_id"] for t in everything]

    mine = await billing.client.get(
        "/api/accounts/me/transactions",
        params={"limit": 4},
        headers=tokens.headers("worker", worker),
    )
    assert len(mine.json()) == 4 and "cursor=" in mine.links["next"]["url"]
    too_many = await billing.client.get(
        "/api/accounts/me/transactions",
        params={"limit": 1001},
        headers=tokens.headers("worker", worker),
    )
    assert too_many.status_code == 422 and "limit" in too_many.json()["detail"]

"""Feeding events to analytics through the real broker, and reading what it shows."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select

from ates.platform.db import Database
from ates.platform.tables import inbox
from ates.testing.workload import Completed, Workload
from tests.support import TokenFactory, eventually


async def applied_count(db: Database, consumer: str) -> int:
    async with db.reader() as session:
        count = await session.scalar(
            select(func.count()).select_from(inbox).where(inbox.c.consumer == consumer)
        )
    return int(count or 0)


async def wait_applied(db: Database, consumer: str, expected: int, timeout: float = 20) -> None:
    async def done() -> bool:
        return await applied_count(db, consumer) >= expected

    await eventually(done, timeout=timeout)


# --- what the API must answer, computed from the workload ------------------------------


def task_json(task: Completed | None) -> dict[str, Any] | None:
    if task is None:
        return None
    return {
        "task_public_id": task.task_public_id,
        "title": task.title,
        "jira_id": task.jira_id,
        "reward_cents": task.reward_cents,
        "completed_at": task.completed_at,
    }


def normalized(task: dict[str, Any] | None) -> dict[str, Any] | None:
    if task is None:
        return None
    return {**task, "completed_at": datetime.fromisoformat(task["completed_at"])}


def expected_dashboard(w: Workload, day: date) -> dict[str, Any]:
    monday = day - timedelta(days=day.weekday())
    first_of_month = day.replace(day=1)
    end_of_month = (first_of_month + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return {
        "date": day.isoformat(),
        "management_earnings_cents": w.earnings(day),
        "negative_balance_workers": len(w.negative_workers()),
        "most_expensive": {
            "day": task_json(w.top(day, day)),
            "week": task_json(w.top(monday, monday + timedelta(days=6))),
            "month": task_json(w.top(first_of_month, end_of_month)),
        },
    }


def shown_dashboard(body: dict[str, Any]) -> dict[str, Any]:
    tops = body["most_expensive"]
    return {**body, "most_expensive": {k: normalized(v) for k, v in tops.items()}}


async def snapshot(client: httpx.AsyncClient, tokens: TokenFactory, w: Workload) -> dict[str, Any]:
    """Everything the API shows about the workload's days."""
    headers = tokens.headers("admin")
    result: dict[str, Any] = {}
    day = w.first_day
    while day <= w.last_day:
        response = await client.get(f"/api/dashboard?date={day}", headers=headers)
        assert response.status_code == 200, response.text
        result[day.isoformat()] = response.json()
        day += timedelta(days=1)
    response = await client.get(
        f"/api/most-expensive?from={w.first_day}&to={w.last_day}", headers=headers
    )
    assert response.status_code == 200, response.text
    result["range"] = response.json()
    response = await client.get("/api/negative-balances", headers=headers)
    result["negative"] = response.json()
    return result

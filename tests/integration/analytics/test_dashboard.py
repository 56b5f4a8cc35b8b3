"""The dashboard, fed real events through NATS in a scrambled order, shows exactly the
figures computed from the same events by the workload itself, in a business time zone
(New York) whose days, weeks and months do not start at UTC midnight."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from ates.config import Settings
from ates.testing.events import connected_broker, publish
from ates.testing.workload import Workload, simulate
from tests.integration.analytics.feed import (
    expected_dashboard,
    normalized,
    shown_dashboard,
    task_json,
    wait_applied,
)
from tests.support import TokenFactory, make_settings, service_harness

pytestmark = pytest.mark.integration

FIRST, LAST = date(2024, 3, 8), date(2024, 4, 2)  # DST starts 10 March; a month ends


@pytest.fixture
def ny_settings(tmp_path: Path, nats_url: str) -> Settings:
    return make_settings(tmp_path / "data", nats_url, timezone="America/New_York")


@pytest.fixture(scope="module")
def workload() -> Workload:
    from zoneinfo import ZoneInfo

    return simulate(ZoneInfo("America/New_York"), FIRST, LAST)


async def test_every_figure_matches_the_events(
    ny_settings: Settings, tokens: TokenFactory, workload: Workload
) -> None:
    async with (
        service_harness("analytics", ny_settings, tokens) as analytics,
        connected_broker(ny_settings.broker_url or "") as broker,
    ):
        await publish(broker, workload.events, rng=random.Random(3), duplicates=0.15)
        await wait_applied(analytics.db, "analytics", len(workload.events))

        admin = tokens.headers("admin")
        day = FIRST
        while day <= LAST:
            response = await analytics.client.get(f"/api/dashboard?date={day}", headers=admin)
            assert response.status_code == 200, response.text
            assert shown_dashboard(response.json()) == expected_dashboard(workload, day), day
            day += timedelta(days=1)

        response = await analytics.client.get(
            f"/api/most-expensive?from={FIRST}&to={LAST}", headers=admin
        )
        body = response.json()
        days = [FIRST + timedelta(days=n) for n in range((LAST - FIRST).days + 1)]
        assert [d["date"] for d in body["days"]] == [d.isoformat() for d in days]
        for line, day in zip(body["days"], days, strict=True):
            assert normalized(line["task"]) == task_json(workload.top(day, day)), day
        assert normalized(body["range"]) == task_json(workload.top(FIRST, LAST))

        response = await analytics.client.get("/api/negative-balances", headers=admin)
        owners = {w["owner_public_id"] for w in response.json()["workers"]}
        assert owners == workload.negative_workers()


async def test_boundaries_follow_the_business_time_zone(
    ny_settings: Settings, tokens: TokenFactory
) -> None:
    """Sunday 23:59 in New York is Monday 03:59 UTC: it belongs to Sunday, its week and
    its month; a minute later belongs to Monday, the next week, the next month."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo("America/New_York")
    w = simulate(zone, date(2024, 3, 30), date(2024, 4, 1), tasks_per_day=0)
    before = next(c for c in w.completed if c.local_day == date(2024, 3, 31))
    after = next(c for c in w.completed if c.local_day == date(2024, 4, 1))
    assert before.completed_at == datetime(2024, 4, 1, 3, 59, tzinfo=UTC)
    assert before.reward_cents > after.reward_cents
    async with (
        service_harness("analytics", ny_settings, tokens) as analytics,
        connected_broker(ny_settings.broker_url or "") as broker,
    ):
        await publish(broker, w.events, rng=random.Random(5))
        await wait_applied(analytics.db, "analytics", len(w.events))
        admin = tokens.headers("admin")

        sunday = (
            await analytics.client.get("/api/dashboard?date=2024-03-31", headers=admin)
        ).json()
        monday = (
            await analytics.client.get("/api/dashboard?date=2024-04-01", headers=admin)
        ).json()
        for period in ("day", "week", "month"):
            assert sunday["most_expensive"][period]["task_public_id"] == before.task_public_id
            assert monday["most_expensive"][period]["task_public_id"] == after.task_public_id
        assert sunday["management_earnings_cents"] == w.earnings(date(2024, 3, 31))
        assert monday["management_earnings_cents"] == w.earnings(date(2024, 4, 1))

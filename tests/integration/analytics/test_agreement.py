"""Analytics and billing agree on management earnings for every day of a multi-day
workload: the real billing service prices and books the tasks events, its events reach
analytics through NATS, and both dashboards are asked for each day. Some movements
arrive after their day was closed, so billing books them on the first open day; analytics
follows billing's business date, so the figures still agree."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select

from ates.config import Settings
from ates.platform import migrations
from ates.platform.events import default_registry
from ates.platform.runtime import build_runtime
from ates.platform.service import create_app, running
from ates.platform.tables import inbox, outbox
from ates.services.billing.models import Transaction
from ates.services.registry import spec
from ates.testing.events import connected_broker, publish
from ates.testing.workload import simulate
from tests.integration.analytics.feed import wait_applied
from tests.support import (
    Harness,
    TokenFactory,
    eventually,
    make_settings,
    page_cookie,
    service_harness,
)

pytestmark = pytest.mark.integration

ZONE = "America/New_York"
FIRST, LAST = date(2024, 3, 8), date(2024, 3, 12)  # across the DST change


@asynccontextmanager
async def billing_without_clock(settings: Settings, tokens: TokenFactory) -> AsyncIterator[Harness]:
    """Billing as ``service_harness`` runs it, minus its midnight closer: the workload's
    days are in the past, which the real clock would close before their events arrive.
    Days are closed by hand through the API instead."""
    billing = dataclasses.replace(spec("billing"), background=())
    runtime = build_runtime(billing, settings, verifier=tokens.verifier())
    await migrations.upgrade("billing", runtime.db)
    app = create_app(billing, settings, runtime=runtime, messaging=False)
    async with running(runtime):
        await asyncio.wait_for(runtime.broker_ready.wait(), 20)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://billing") as client:
            yield Harness(runtime, client)


async def test_analytics_and_billing_agree_on_every_day(
    tmp_path: Path, nats_url: str, tokens: TokenFactory
) -> None:
    settings = make_settings(tmp_path / "data", nats_url, timezone=ZONE)
    w = simulate(ZoneInfo(ZONE), FIRST, LAST, seed=21, tasks_per_day=4)
    registry = default_registry()
    # what auth and tasks publish; billing's own events come from billing itself
    upstream = [e for e in w.events if registry.domain_of(e.event_name) != "billing"]
    rng = random.Random(13)
    late = [
        e
        for e in upstream
        if e.event_name in ("TaskAssigned", "TaskCompleted")
        and e.event_time.astimezone(ZoneInfo(ZONE)).date() == FIRST + timedelta(days=1)
        and rng.random() < 0.3
    ]
    on_time = [e for e in upstream if e not in late]
    assert late

    admin = tokens.headers("admin")
    async with (
        billing_without_clock(settings, tokens) as billing,
        service_harness("analytics", settings, tokens) as analytics,
        connected_broker(nats_url) as broker,
    ):
        await publish(broker, on_time)
        await wait_applied(billing.db, "billing", len(on_time))
        closed = await billing.client.post(
            f"/api/days/{FIRST + timedelta(days=1)}/close", headers=admin
        )
        assert closed.status_code == 200, closed.text
        await publish(broker, late)
        await wait_applied(billing.db, "billing", len(upstream))

        async def analytics_has_all_of_billing() -> bool:
            async with billing.db.reader() as session:
                produced = set(await session.scalars(select(outbox.c.event_id)))
                unsent = await session.scalar(
                    select(outbox.c.id).where(outbox.c.published_at.is_(None)).limit(1)
                )
            async with analytics.db.reader() as session:
                applied = set(await session.scalars(select(inbox.c.event_id)))
            return unsent is None and produced <= applied

        await eventually(analytics_has_all_of_billing, timeout=60)

        days = (LAST - FIRST).days + 3  # and the days after, where late movements may land
        last = FIRST + timedelta(days=days - 1)
        response = await billing.client.get(
            f"/api/dashboard?date={last}&days={days}", headers=admin
        )
        assert response.status_code == 200, response.text
        billing_days = {d["date"]: d["management_earnings_cents"] for d in response.json()["days"]}
        assert len(billing_days) == days
        shown = {}
        for day in billing_days:
            response = await analytics.client.get(f"/api/dashboard?date={day}", headers=admin)
            shown[day] = response.json()["management_earnings_cents"]
        assert shown == billing_days
        assert sum(1 for cents in billing_days.values() if cents) >= 4  # a multi-day workload
        async with billing.db.reader() as session:  # and some movements were booked late
            booked_late = await session.scalar(
                select(func.count()).where(Transaction.booked_late_from.is_not(None))
            )
        assert booked_late

        # and the two dashboards say the same of every day: closed, open, or before the
        # books' first day (never "closed" for a day nothing happened before the books)
        first_shown = FIRST - timedelta(days=2)
        billing.client.cookies = await page_cookie(billing.runtime, "admin")
        analytics.client.cookies = await page_cookie(analytics.runtime, "admin")
        books = await billing.client.get(f"/company?date={last}&days={days + 2}")
        board = await analytics.client.get(f"/?date={last}&from={first_shown}&to={last}")
        billing_states = dict(
            re.findall(r'<tr data-day="([^"]+)" data-state="([^"]+)">', books.text)
        )
        analytics_states = dict(
            re.findall(r'<tr data-day="([^"]+)" data-state="([^"]+)">', board.text)
        )
        assert len(billing_states) == days + 2
        assert billing_states == analytics_states
        assert billing_states[str(first_shown)] == "before"
        assert billing_states[str(FIRST + timedelta(days=1))] == "closed"
        assert billing_states[str(last)] == "open"

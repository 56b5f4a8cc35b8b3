"""Who may see analytics (admins only), and what a bad request is told."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import insert

from ates.config import Settings
from ates.platform.closing import late_booking_note
from ates.platform.events import Event
from ates.platform.tables import consumer_positions
from ates.testing.events import connected_broker, publish
from ates.testing.workload import simulate
from tests.integration.analytics.feed import wait_applied
from tests.support import TokenFactory, page_cookie, service_harness

pytestmark = pytest.mark.integration

API = (
    "/api/dashboard",
    "/api/most-expensive?from=2024-03-01&to=2024-03-02",
    "/api/negative-balances",
)


@pytest.mark.parametrize("role", ["worker", "manager", "accountant"])
async def test_the_api_is_for_admins_only(
    settings: Settings, tokens: TokenFactory, role: str
) -> None:
    async with service_harness("analytics", settings, tokens, messaging=False) as analytics:
        for path in API:
            assert (await analytics.client.get(path)).status_code == 401
            response = await analytics.client.get(path, headers=tokens.headers(role))
            assert response.status_code == 403, path
            assert "admin" in response.json()["detail"]
            response = await analytics.client.get(path, headers=tokens.headers("admin"))
            assert response.status_code == 200, path


async def test_bad_dates_are_422_naming_the_field(settings: Settings, tokens: TokenFactory) -> None:
    admin = tokens.headers("admin")
    async with service_harness("analytics", settings, tokens, messaging=False) as analytics:
        get = analytics.client.get
        response = await get("/api/dashboard?date=2024-02-30", headers=admin)
        assert response.status_code == 422
        assert response.json()["detail"].startswith("date:")
        response = await get("/api/most-expensive?from=2024-03-05", headers=admin)
        assert response.status_code == 422
        assert response.json()["detail"].startswith("to:")
        response = await get("/api/most-expensive?from=2024-03-05&to=2024-03-01", headers=admin)
        assert response.status_code == 422
        assert response.json()["detail"] == "to: must not be before from"
        response = await get("/api/most-expensive?from=2023-01-01&to=2024-03-01", headers=admin)
        assert response.status_code == 422
        assert response.json()["detail"].startswith("to: a range covers at most")


async def test_an_empty_dashboard_says_nothing_happened(
    settings: Settings, tokens: TokenFactory
) -> None:
    async with service_harness("analytics", settings, tokens, messaging=False) as analytics:
        body = (
            await analytics.client.get(
                "/api/dashboard?date=2024-03-03", headers=tokens.headers("admin")
            )
        ).json()
    assert body == {
        "date": "2024-03-03",
        "management_earnings_cents": 0,
        "negative_balance_workers": 0,
        "most_expensive": {"day": None, "week": None, "month": None},
    }


async def test_pages_are_for_admins_only(settings: Settings, tokens: TokenFactory) -> None:
    async with service_harness("analytics", settings, tokens, messaging=False) as analytics:
        client = analytics.client
        response = await client.get("/", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")
        for role in ("worker", "manager", "accountant"):
            client.cookies = await page_cookie(analytics.runtime, role=role)
            response = await client.get("/")
            assert response.status_code == 403
            assert "admins only" in response.text


async def test_the_page_shows_the_figures_and_a_chart(
    settings: Settings, tokens: TokenFactory
) -> None:
    from zoneinfo import ZoneInfo

    w = simulate(ZoneInfo("UTC"), date(2024, 3, 28), date(2024, 4, 2), tasks_per_day=2)
    async with (
        service_harness("analytics", settings, tokens) as analytics,
        connected_broker(settings.broker_url or "") as broker,
    ):
        await publish(broker, w.events, rng=random.Random(1))
        await wait_applied(analytics.db, "analytics", len(w.events))
        analytics.client.cookies = await page_cookie(
            analytics.runtime, role="admin", username="ada"
        )
        response = await analytics.client.get("/?date=2024-03-31&from=2024-03-28&to=2024-04-02")
    assert response.status_code == 200
    page = response.text
    assert "ada" in page  # the header names who is signed in
    earnings = w.earnings(date(2024, 3, 31))
    assert f'data-testid="earnings">{format_money(earnings)}<' in page
    assert f'data-testid="negative-count">{len(w.negative_workers())}<' in page
    assert page.count("<rect ") == 6  # one bar per day of the range
    top = w.top(date(2024, 3, 28), date(2024, 4, 2))
    assert top is not None
    assert "28\u201302 April" not in page  # the range spans two months
    assert "28 March \u2013 02 April" in page
    dollars = f"{top.reward_cents // 100}" + (
        f".{top.reward_cents % 100:02d}" if top.reward_cents % 100 else ""
    )
    assert f"{top.title}</a> \u2014 {dollars} $</strong>" in page
    assert f'href="http://127.0.0.1:8001/tasks/{top.task_public_id}"' in page  # linked


def format_money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d} $"


async def test_the_page_says_when_a_rebuild_is_running(
    settings: Settings, tokens: TokenFactory
) -> None:
    async with service_harness("analytics", settings, tokens, messaging=False) as analytics:
        analytics.client.cookies = await page_cookie(analytics.runtime, role="admin")
        assert "being rebuilt" not in (await analytics.client.get("/")).text
        async with analytics.runtime.uow() as uow:
            await uow.session.execute(
                insert(consumer_positions).values(
                    consumer="analytics",
                    stream="rebuild",
                    generation=2,
                    updated_at=datetime.now(UTC),
                )
            )
            await uow.commit()
        assert "being rebuilt" in (await analytics.client.get("/")).text


async def test_the_page_takes_typed_days_and_explains_a_closed_today(
    settings: Settings, tokens: TokenFactory
) -> None:
    async with service_harness("analytics", settings, tokens, messaging=False) as analytics:
        analytics.client.cookies = await page_cookie(analytics.runtime, role="admin")
        typed = await analytics.client.get("/?date=31.03.2024&from=28.03.2024&to=02.04.2024")
        assert typed.status_code == 200
        assert "Management earnings on 31.03.2024" in typed.text
        assert 'name="from" value="28.03.2024"' in typed.text
        odd = await analytics.client.get("/?date=31.02.2024")
        assert odd.status_code == 200
        assert "Day: &#39;31.02.2024&#39; is not a day of the calendar" in odd.text

        today = datetime.now(UTC).date()
        closed = Event("DayClosed", 1, {"business_date": today.isoformat()}, "billing")
        assert await analytics.runtime.consumer().apply(closed)
        page = await analytics.client.get("/")
        note = late_booking_note(today, today)
        assert note is not None and note in page.text  # billing's words, word for word

"""Input at the edges of what the APIs take gets a 4xx naming the field, never a 500, on
SQLite and on PostgreSQL (which refuses a NUL character in text and a cursor past
int4 where SQLite takes both)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from ates.config import Settings
from ates.services.auth.commands import CreatePerson, create_person
from tests.integration.tasks.helpers import hire
from tests.support import Harness, TokenFactory, make_settings, page_cookie, service_harness

pytestmark = pytest.mark.integration

Open = Callable[[str], Any]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings_on(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Callable[[str], Awaitable[Settings]]:
    """Settings whose service database is SQLite or a fresh PostgreSQL database."""
    make_database = (
        request.getfixturevalue("make_postgres_database") if request.param == "postgres" else None
    )

    async def for_service(service: str) -> Settings:
        overrides: dict[str, Any] = {}
        if make_database is not None:
            overrides[f"{service}_database_url"] = await make_database()
        return make_settings(tmp_path / "data", None, **overrides)

    return for_service


async def _expect_4xx(response: httpx.Response, status: int, field: str) -> None:
    assert response.status_code == status, (response.request.url, response.text)
    detail = response.json()["detail"]
    assert detail.startswith(f"{field}: "), detail


async def test_tasks_edges(settings_on: Callable[[str], Awaitable[Settings]]) -> None:
    tokens = TokenFactory()
    settings = await settings_on("tasks")
    async with service_harness("tasks", settings, tokens, messaging=False) as tasks:
        client, admin = tasks.client, tokens.headers("admin")
        for cursor in ("9223372036854775808", "2147483648"):
            listed = await client.get("/api/tasks", params={"cursor": cursor}, headers=admin)
            await _expect_4xx(listed, 422, "cursor")
        for field in ("title", "description", "jira_id"):
            body = {"title": "Clean the cage", "jira_id": "POPUG-1", "description": "d"}
            body[field] = body[field] + "\u0000"
            created = await client.post("/api/tasks", json=body, headers=admin)
            await _expect_4xx(created, 422, field)
        nul_assignee = await client.get("/api/tasks", params={"assignee": "\x00"}, headers=admin)
        await _expect_4xx(nul_assignee, 422, "assignee")
        for path in ("/api/tasks/%00", "/api/tasks/not-a-task"):
            assert (await client.get(path, headers=admin)).status_code == 404
            assert (await client.post(f"{path}/complete", headers=admin)).status_code == 404


async def test_billing_edges(settings_on: Callable[[str], Awaitable[Settings]]) -> None:
    tokens = TokenFactory()
    settings = await settings_on("billing")
    async with service_harness("billing", settings, tokens, messaging=False) as billing:
        client, admin = billing.client, tokens.headers("admin")
        for day in ("0001-01-01", "0001-01-06", "1969-12-31", "9999-12-31"):
            board = await client.get("/api/dashboard", params={"date": day}, headers=admin)
            await _expect_4xx(board, 422, "date")
        for day in ("0", "20260302", "0001-01-01"):
            closed = await client.post(f"/api/days/{day}/close", headers=admin)
            await _expect_4xx(closed, 422, "date")
        mine = await client.get(
            "/api/accounts/me/transactions", params={"date": "\x00"}, headers=admin
        )
        await _expect_4xx(mine, 422, "date")


async def test_analytics_edges(settings_on: Callable[[str], Awaitable[Settings]]) -> None:
    tokens = TokenFactory()
    settings = await settings_on("analytics")
    async with service_harness("analytics", settings, tokens, messaging=False) as analytics:
        client, admin = analytics.client, tokens.headers("admin")
        board = await client.get("/api/dashboard", params={"date": "9999-12-31"}, headers=admin)
        await _expect_4xx(board, 422, "date")
        best = await client.get(
            "/api/most-expensive", params={"from": "9999-12-30", "to": "9999-12-31"}, headers=admin
        )
        await _expect_4xx(best, 422, "from")
        fine = await client.get(
            "/api/most-expensive", params={"from": "9998-12-30", "to": "9998-12-31"}, headers=admin
        )
        assert fine.status_code == 200, fine.text


async def _admin_of(auth: Harness, tokens: TokenFactory) -> dict[str, str]:
    async with auth.runtime.uow() as uow:
        admin = await create_person(
            uow, CreatePerson(username="ada", role="admin", password="correct horse")
        )
    return tokens.headers("admin", admin.public_id)


async def test_auth_edges(settings_on: Callable[[str], Awaitable[Settings]]) -> None:
    tokens = TokenFactory()
    settings = await settings_on("auth")
    async with service_harness("auth", settings, tokens, messaging=False) as auth:
        client, admin = auth.client, await _admin_of(auth, tokens)
        person = {"username": "polly", "role": "worker", "password": "long enough"}
        for field, value in (("full_name", "Polly\x00"), ("email", "p\x00lly@example.com")):
            created = await client.post("/api/users", json={**person, field: value}, headers=admin)
            await _expect_4xx(created, 422, field)
        polly = (await client.post("/api/users", json=person, headers=admin)).json()
        for field, value in (("full_name", "Polly\x00"), ("email", "p\x00lly@example.com")):
            changed = await client.patch(
                f"/api/users/{polly['public_id']}", json={field: value}, headers=admin
            )
            await _expect_4xx(changed, 422, field)
        for path in ("/api/users/%00", "/api/users/nobody"):
            assert (await client.get(path, headers=admin)).status_code == 404
            patched = await client.patch(path, json={"full_name": "X"}, headers=admin)
            assert patched.status_code == 404


async def test_page_edges(settings_on: Callable[[str], Awaitable[Settings]]) -> None:
    tokens = TokenFactory()
    settings = await settings_on("tasks")
    async with service_harness("tasks", settings, tokens, messaging=False) as tasks:
        await hire(tasks.runtime)
        tasks.client.cookies.update(await page_cookie(tasks.runtime, "manager"))
        made = await tasks.client.post("/tasks", data={"title": "Fix\x00 it"})
        assert made.status_code == 422
        assert "Task not created. Title: must not contain a NUL character" in made.text
        done = await tasks.client.post("/tasks/%00/complete")
        assert done.status_code == 303
        assert "Not done. no task" in (await tasks.client.get("/all")).text
        listed = await tasks.client.get("/all", params={"assignee": "\x00", "q": "a\x00"})
        assert listed.status_code == 200
        assert "Assignee: choose a person from the list" in listed.text
        assert "Search: at most 300 characters of text" in listed.text

    settings = await settings_on("billing")
    async with service_harness("billing", settings, tokens, messaging=False) as billing:
        billing.client.cookies.update(await page_cookie(billing.runtime, "accountant"))
        far = await billing.client.get("/company", params={"offset": "9223372036854775808"})
        assert far.status_code == 422 and far.json()["detail"].startswith("offset: ")
        for day in ("0001-01-01", "9999-12-31", "\x00"):
            page = await billing.client.get("/company", params={"date": day})
            assert page.status_code == 200
            assert "Day: " in page.text and "showing today" in page.text

    settings = await settings_on("auth")
    async with service_harness("auth", settings, tokens, messaging=False) as auth:
        await _admin_of(auth, tokens)
        async with auth.runtime.db.reader() as session:
            admin = (await session.execute(sa.text("SELECT public_id FROM people"))).scalar_one()
        auth.client.cookies.update(
            await page_cookie(auth.runtime, "admin", admin, signed_in_at=int(time.time()))
        )
        assert (await auth.client.get("/")).status_code == 200
        assert (await auth.client.get("/people/%00")).status_code == 404
        changed = await auth.client.post("/people/%00", data={"full_name": "X"})
        assert changed.status_code == 303

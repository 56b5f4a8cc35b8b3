"""The provider on PostgreSQL: single-use codes and refresh tokens hold under concurrent
requests through row locks (on SQLite, writers are serialised anyway)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.auth.conftest import (
    AuthServer,
    Browser,
    authorize,
    exchange,
    loopback_settings,
    refresh,
    serve_auth,
    tokens_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.postgres]


@pytest.fixture
async def pg_auth(tmp_path: Path, postgres_url: str) -> AsyncIterator[AuthServer]:
    settings = loopback_settings(tmp_path / "data", None, auth_database_url=postgres_url)
    async with serve_auth(settings) as server:
        yield server


async def test_codes_and_refresh_tokens_are_single_use_under_concurrency(
    pg_auth: AuthServer, browser: Browser
) -> None:
    await pg_auth.person("polly")
    code, started = await authorize(pg_auth, browser, "polly")
    answers = await asyncio.gather(*(exchange(pg_auth, code, started.verifier) for _ in range(3)))
    assert sorted(a.status_code for a in answers) == [200, 400, 400]

    first = await tokens_for(pg_auth, browser, "polly")
    rotations = await asyncio.gather(*(refresh(pg_auth, first["refresh_token"]) for _ in range(3)))
    assert sorted(r.status_code for r in rotations) == [200, 400, 400]
    winner = next(r.json() for r in rotations if r.status_code == 200)
    # the losers were replays: the whole family, the winner's new token included, is revoked
    assert (await refresh(pg_auth, winner["refresh_token"])).status_code == 400

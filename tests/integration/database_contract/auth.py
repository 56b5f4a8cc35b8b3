"""Auth as an OAuth provider: single-use codes and refresh tokens hold under concurrent
requests (row locks on PostgreSQL; on SQLite writers take turns), over real HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
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
from tests.integration.database_contract.base import DatabaseBase


class AuthContract(DatabaseBase):
    @pytest.fixture
    async def auth_server(self, tmp_path: Path, database_url: str) -> AsyncIterator[AuthServer]:
        settings = loopback_settings(tmp_path / "data", None, auth_database_url=database_url)
        async with serve_auth(settings) as server:
            yield server

    @pytest.fixture
    async def web_browser(self) -> AsyncIterator[Browser]:
        async with httpx.AsyncClient(timeout=10) as client:
            yield Browser(client)

    async def test_codes_and_refresh_tokens_are_single_use_under_concurrency(
        self, auth_server: AuthServer, web_browser: Browser
    ) -> None:
        await auth_server.person("polly")
        code, started = await authorize(auth_server, web_browser, "polly")
        answers = await asyncio.gather(
            *(exchange(auth_server, code, started.verifier) for _ in range(3))
        )
        assert sorted(a.status_code for a in answers) == [200, 400, 400]

        first = await tokens_for(auth_server, web_browser, "polly")
        rotations = await asyncio.gather(
            *(refresh(auth_server, first["refresh_token"]) for _ in range(3))
        )
        assert sorted(r.status_code for r in rotations) == [200, 400, 400]
        winner = next(r.json() for r in rotations if r.status_code == 200)
        # the losers were replays: the whole family, the winner's new token included, is
        # revoked
        assert (await refresh(auth_server, winner["refresh_token"])).status_code == 400

"""Auth running as a real HTTP server (uvicorn on a free loopback port), and a browser.

OAuth is about what crosses the wire between separate parties, so these tests run auth
the way a deployment does and talk to it over real HTTP: a third-party client library,
the dashboards' login flow and ``ates token`` all see nothing in-process.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from ates.config import Settings
from ates.platform import migrations
from ates.platform.db import Database
from ates.platform.login import AuthorizationRequest, authorization_request
from ates.platform.runtime import Runtime, build_runtime
from ates.platform.service import create_app
from ates.platform.sessions import page_sessions
from ates.platform.tcp import free_port
from ates.services.auth.commands import CreatePerson, create_person
from ates.services.auth.models import Person
from ates.services.registry import spec
from tests.support import eventually, make_settings

PASSWORD = "correct horse battery"


@dataclass
class AuthServer:
    url: str
    runtime: Runtime
    settings: Settings

    async def person(self, username: str, role: str = "worker", **extra: Any) -> Person:
        async with self.runtime.uow() as uow:
            return await create_person(
                uow, CreatePerson(username=username, role=role, password=PASSWORD, **extra)
            )


def loopback_settings(data_dir: Path, broker_url: str | None, **overrides: Any) -> Settings:
    """Settings whose services all live on loopback ports (OAuth refuses plain http
    elsewhere), auth on a port that is really free."""
    port = free_port()
    return make_settings(
        data_dir, broker_url, auth_url=f"http://127.0.0.1:{port}", port_base=20000, **overrides
    )


@asynccontextmanager
async def serve_auth(settings: Settings, *, messaging: bool = False) -> AsyncIterator[AuthServer]:
    runtime = build_runtime(spec("auth"), settings)  # the real verifier, not a test key
    await migrations.upgrade("auth", runtime.db)
    app = create_app(spec("auth"), settings, runtime=runtime, messaging=messaging)
    port = int(settings.issuer.rsplit(":", 1)[1])
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, lifespan="on", log_level="warning", log_config=None
        )
    )
    task = asyncio.create_task(server.serve())

    async def up_or_gone() -> bool:
        return server.started or task.done()

    await eventually(up_or_gone, timeout=10, interval=0.02)
    if not server.started:
        raise RuntimeError("auth did not start")
    try:
        if messaging:
            await asyncio.wait_for(runtime.broker_ready.wait(), 20)
        yield AuthServer(url=settings.issuer, runtime=runtime, settings=settings)
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def auth(tmp_path: Path) -> AsyncIterator[AuthServer]:
    async with serve_auth(loopback_settings(tmp_path / "data", None)) as server:
        yield server


class Browser:
    """An HTTP client that keeps cookies and follows redirects by hand, so a test can stop
    at the hop it cares about (a callback URL nobody serves, say)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def follow(
        self, response: httpx.Response, *, stop_at: str, max_hops: int = 10
    ) -> httpx.Response | str:
        """Follow redirects; return the first URL starting with ``stop_at``, or the first
        response that is not a redirect."""
        for _ in range(max_hops):
            if not response.is_redirect:
                return response
            location = urljoin(str(response.url), response.headers["location"])
            if location.startswith(stop_at):
                return location
            response = await self.client.get(location)
        raise AssertionError("too many redirects")

    async def sign_in(
        self, authorize_url: str, username: str, password: str, *, stop_at: str
    ) -> str:
        """Open an authorization URL, fill in auth's login form if auth asks (no session
        yet), return the callback URL."""
        page = await self.follow(await self.client.get(authorize_url), stop_at=stop_at)
        if isinstance(page, str):
            return page  # already signed in at auth
        assert page.status_code == 200, page.text
        form = login_form_fields(page.text)
        posted = await self.client.post(
            str(page.url), data={**form, "username": username, "password": password}
        )
        result = await self.follow(posted, stop_at=stop_at)
        assert isinstance(result, str), f"sign-in did not reach the client: {result.text}"
        return result


def login_form_fields(html: str) -> dict[str, str]:
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html)
    return {name: unescape(value) for name, value in found}


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield Browser(client)


CLI_REDIRECT = "http://127.0.0.1:53682/callback"


async def authorize(
    auth: AuthServer,
    browser: Browser,
    username: str,
    *,
    client_id: str = "ates-cli",
    redirect_uri: str = CLI_REDIRECT,
    scope: str = "openid profile",
) -> tuple[str, AuthorizationRequest]:
    """Sign ``username`` in through the authorization endpoint; the code and the request."""
    started = authorization_request(f"{auth.url}/oauth/authorize", client_id, redirect_uri, scope)
    callback = await browser.sign_in(started.url, username, PASSWORD, stop_at=redirect_uri)
    query = parse_qs(urlsplit(callback).query)
    assert query["state"] == [started.state]
    return query["code"][0], started


async def exchange(
    auth: AuthServer,
    code: str,
    verifier: str | None,
    *,
    client_id: str = "ates-cli",
    client_secret: str | None = None,
    redirect_uri: str = CLI_REDIRECT,
) -> httpx.Response:
    """POST the code to the token endpoint (``verifier=None``: without one)."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if verifier is not None:
        form["code_verifier"] = verifier
    async with httpx.AsyncClient(timeout=10) as http:
        if client_secret is None:
            form["client_id"] = client_id
            return await http.post(f"{auth.url}/oauth/token", data=form)
        credentials = httpx.BasicAuth(client_id, client_secret)
        return await http.post(f"{auth.url}/oauth/token", data=form, auth=credentials)


async def refresh(
    auth: AuthServer, refresh_token: str, client_id: str = "ates-cli"
) -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(f"{auth.url}/oauth/token", data=form)


async def tokens_for(auth: AuthServer, browser: Browser, username: str) -> dict[str, Any]:
    code, started = await authorize(auth, browser, username)
    response = await exchange(auth, code, started.verifier)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def twelve_hours_later(db: Database) -> None:
    """The one page session in ``db`` lasts twelve hours from sign-in: move its end to a
    second ago, as twelve hours later (however often its cookie was refreshed meanwhile)."""
    async with db.sessions() as session, session.begin():
        started, expires = (
            await session.execute(sa.select(page_sessions.c.started_at, page_sessions.c.expires_at))
        ).one()
        assert expires - started == timedelta(hours=12)
        await session.execute(
            sa.update(page_sessions).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )

"""No secret in the logs of a whole sign-in scenario at DEBUG: not the secret key (nor
the client secrets derived from it), not a password, not a JWT."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import structlog

from ates.platform import migrations
from ates.platform.login import first_party_client_secret
from ates.platform.runtime import build_runtime
from ates.platform.service import create_app, running
from ates.platform.telemetry import configure_logging
from ates.services.registry import spec
from tests.integration.auth.conftest import (
    PASSWORD,
    AuthServer,
    Browser,
    loopback_settings,
    serve_auth,
    tokens_for,
)

pytestmark = pytest.mark.integration

SECRET_KEY = "m6Uq0VdQyq8Yk0oJm8l1fS0hGx7pZ3wB9cR2tN5vL4e"
NEW_PASSWORD = "a new person's password 42"
JWT = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+")


@pytest.fixture
def debug_logs() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    buffer = io.StringIO()
    configure_logging("DEBUG", stream=buffer)
    yield buffer
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.fixture
async def auth_at_debug(tmp_path: Path, debug_logs: io.StringIO) -> AsyncIterator[AuthServer]:
    settings = loopback_settings(tmp_path / "data", None, secret_key=SECRET_KEY)
    async with serve_auth(settings) as server:
        yield server


async def test_a_whole_sign_in_at_debug_logs_no_secret(
    auth_at_debug: AuthServer, browser: Browser, debug_logs: io.StringIO
) -> None:
    auth = auth_at_debug
    settings = auth.settings
    await auth.person("ada", role="admin")
    tokens = await tokens_for(auth, browser, "ada")
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    async with httpx.AsyncClient(base_url=auth.url, timeout=10) as api:
        created = await api.post(
            "/api/users",
            headers=bearer,
            json={"username": "polly", "role": "worker", "password": NEW_PASSWORD},
        )
        assert created.status_code == 201, created.text
        refreshed = await api.post(
            "/oauth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "client_id": "ates-cli",
            },
        )
        assert refreshed.status_code == 200, refreshed.text

    # a dashboard signs polly in through auth (its client secret on the wire) and out again
    runtime = build_runtime(spec("tasks"), settings)
    await migrations.upgrade("tasks", runtime.db)
    app = create_app(spec("tasks"), settings, runtime=runtime, messaging=False)
    tasks_url = settings.public_url("tasks")
    async with (
        running(runtime, messaging=False),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=tasks_url) as tasks,
    ):
        start = await tasks.get("/login")
        callback = await browser.sign_in(
            start.headers["location"], "polly", NEW_PASSWORD, stop_at=f"{tasks_url}/oauth/"
        )
        landed = await tasks.get(callback.removeprefix(tasks_url))
        assert landed.status_code == 303, landed.text
        logout = await tasks.post("/logout")
        assert (await browser.client.get(logout.headers["location"])).status_code == 200

    text = debug_logs.getvalue()
    assert "Issue token" in text, "Authlib's DEBUG lines are part of the scenario"
    for secret in (
        SECRET_KEY,
        first_party_client_secret(settings, "tasks"),
        PASSWORD,
        NEW_PASSWORD,
        tokens["refresh_token"],
    ):
        assert secret not in text, f"{secret!r} is in the logs"
    assert not JWT.search(text), f"a JWT is in the logs: {JWT.search(text)}"

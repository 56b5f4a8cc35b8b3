"""``ates status`` and the status page against a real service over HTTP (uvicorn on a free
loopback port) and the bundled NATS: a consumer group's lag rises while its consumer is
stopped and falls back to zero once it runs again.

The service runs as two processes on one database, as scale-out runs it: one answers
HTTP and publishes but does not consume (so it can report while consuming is stopped),
the other consumes and is stopped and started again.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from ates.cli import app as cli
from ates.config import Settings
from ates.platform import migrations
from ates.platform.runtime import Runtime, build_runtime
from ates.platform.service import create_app, running
from ates.platform.tcp import free_port
from ates.services.registry import spec
from ates.testing.events import account_created
from tests.support import TokenFactory, eventually, make_settings, page_cookie, publish

pytestmark = pytest.mark.integration

SERVICE = "notifications"  # consumes accounts, tasks and billing


@pytest.fixture
def settings(tmp_path: Path, nats_url: str) -> Settings:
    url = f"http://127.0.0.1:{free_port()}"
    return make_settings(tmp_path / "data", nats_url, notifications_url=url)


@asynccontextmanager
async def web_process(settings: Settings, tokens: TokenFactory) -> AsyncIterator[Runtime]:
    """The service answering HTTP on its URL, publishing, consuming nothing."""
    runtime = build_runtime(spec(SERVICE), settings, verifier=tokens.verifier())
    await migrations.upgrade(SERVICE, runtime.db)
    app = create_app(spec(SERVICE), settings, runtime=runtime)
    port = int(settings.public_url(SERVICE).rsplit(":", 1)[1])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    server = uvicorn.Server(config)
    async with running(runtime, consume=False):
        await asyncio.wait_for(runtime.broker_ready.wait(), 20)
        task = asyncio.create_task(server.serve())

        async def up_or_gone() -> bool:
            return server.started or task.done()

        await eventually(up_or_gone, timeout=10, interval=0.02)
        assert server.started, "the service did not start"
        try:
            yield runtime
        finally:
            server.should_exit = True
            await task


@asynccontextmanager
async def consumer_process(settings: Settings, tokens: TokenFactory) -> AsyncIterator[None]:
    runtime = build_runtime(spec(SERVICE), settings, verifier=tokens.verifier())
    async with running(runtime):
        await asyncio.wait_for(runtime.broker_ready.wait(), 20)
        yield


async def ates_status(*words: str) -> tuple[int, str]:
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["status", *words])
    return result.exit_code, result.stdout


def accounts_group(report: dict[str, Any]) -> dict[str, Any]:
    (service,) = report["services"]
    (group,) = [g for g in service["consumer_groups"] if g["domain"] == "accounts"]
    return dict(group)


async def test_lag_rises_while_the_consumer_is_stopped_and_falls_to_zero_after(
    settings: Settings, tokens: TokenFactory
) -> None:
    url = settings.public_url(SERVICE)
    words = [SERVICE, "--url", f"{SERVICE}={url}", "--token", tokens.token("admin"), "--json"]

    async def group_now() -> dict[str, Any]:
        code, out = await ates_status(*words)
        assert code == 0, out
        return accounts_group(json.loads(out))

    async with web_process(settings, tokens) as web:
        async with consumer_process(settings, tokens):  # the group exists, nothing waits

            async def caught_up() -> dict[str, Any] | None:
                group = await group_now()
                return group if group["lag"] == 0 else None

            await eventually(caught_up)

        # the consumer is stopped; five people are announced meanwhile
        await publish(settings, *(account_created() for _ in range(5)))

        async def behind() -> dict[str, Any] | None:
            group = await group_now()
            return group if group["lag"] else None

        group = await eventually(behind)
        assert (group["group"], group["lag"], group["applied"]) == (SERVICE, 5, 0)
        code, out = await ates_status(*words)
        report = json.loads(out)
        (service,) = report["services"]
        assert (service["service"], service["status"], service["broker"]) == (
            SERVICE,
            "ok",
            "connected",
        )
        assert service["outbox"] == {"backlog": 0, "oldest_unsent_age_seconds": None}
        assert service["dead_letters"] == {"pending": 0}
        assert {"domain": "accounts", "messages": 5} in report["streams"]

        # the status page says the same, to an admin
        async with httpx.AsyncClient(base_url=url) as browser:
            browser.cookies.update(await page_cookie(web, role="admin"))
            page = await browser.get("/admin/status")
        assert page.status_code == 200, page.text
        row = re.search(
            r'<tr data-group="notifications" data-domain="accounts">.*?</tr>', page.text, re.S
        )
        assert row is not None and 'data-testid="lag">5<' in row[0]

        # the consumer runs again: the lag falls back to zero, all five applied
        async with consumer_process(settings, tokens):

            async def drained() -> dict[str, Any] | None:
                group = await group_now()
                return group if group["lag"] == 0 and group["applied"] == 5 else None

            await eventually(drained)

        # the words for people: one table per subject; a service that cannot be read
        # is named and the command fails, the others still shown
        closed = f"http://127.0.0.1:{free_port()}"
        code, out = await ates_status(
            SERVICE,
            "tasks",
            "--url",
            f"{SERVICE}={url}",
            "--url",
            f"tasks={closed}",
            "--token",
            tokens.token("admin"),
        )
        assert code == 1
        assert "unreachable" in out and "accounts" in out and "connected" in out


async def test_the_status_is_for_admins_only(settings: Settings, tokens: TokenFactory) -> None:
    url = settings.public_url(SERVICE)
    async with web_process(settings, tokens):
        async with httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/api/admin/status")).status_code == 401
            worker = await http.get("/api/admin/status", headers=tokens.headers("worker"))
            assert worker.status_code == 403
            assert worker.json() == {"detail": "requires role: admin"}
        code, out = await ates_status(
            SERVICE, "--url", f"{SERVICE}={url}", "--token", tokens.token("worker"), "--json"
        )
        assert code == 1
        (service,) = json.loads(out)["services"]
        assert service["status"] == "error" and "requires role: admin" in service["error"]

"""Single sign-on for the dashboards (``ates.platform.login``): a dashboard sends the
browser to auth, gets a code back, exchanges it, verifies the token against auth's JWKS
and keeps the person in its session; logging out of it signs out at auth too."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator
from html import unescape
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from itsdangerous import TimestampSigner

from ates.config import Settings
from ates.platform import migrations
from ates.platform.db import Database
from ates.platform.runtime import build_runtime
from ates.platform.service import create_app, running
from ates.services.registry import spec
from tests.integration.auth.conftest import (
    PASSWORD,
    AuthServer,
    Browser,
    login_form_fields,
    twelve_hours_later,
)

pytestmark = pytest.mark.integration


def session_of(settings: Settings, response: httpx.Response, service: str) -> dict[str, Any]:
    """The session a dashboard's response set (Starlette's signed cookie)."""
    cookie = response.cookies[f"ates_{service}_session"]
    data = TimestampSigner(settings.secret_key).unsign(cookie)
    result: dict[str, Any] = json.loads(base64.b64decode(data))
    return result


@pytest.fixture
async def dashboard(auth: AuthServer) -> AsyncIterator[httpx.AsyncClient]:
    """The tasks service in-process, verifying tokens against the running auth's JWKS."""
    runtime = build_runtime(spec("tasks"), auth.settings)
    await migrations.upgrade("tasks", runtime.db)
    app = create_app(spec("tasks"), auth.settings, runtime=runtime, messaging=False)
    async with running(runtime, messaging=False):
        base = auth.settings.public_url("tasks")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=base
        ) as client:
            yield client


async def test_a_dashboard_signs_in_through_auth_and_signs_out_everywhere(
    auth: AuthServer, browser: Browser, dashboard: httpx.AsyncClient
) -> None:
    polly = await auth.person("polly", full_name="Polly Parrot")
    callback_url = f"{auth.settings.public_url('tasks')}/oauth/callback"

    start = await dashboard.get("/login", params={"next": "/tasks?status=open"})
    assert start.status_code == 303
    authorize_url = start.headers["location"]
    assert authorize_url.startswith(f"{auth.url}/oauth/authorize?")
    query = parse_qs(urlsplit(authorize_url).query)
    assert query["client_id"] == ["tasks"]
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == [callback_url]

    callback = await browser.sign_in(authorize_url, "polly", PASSWORD, stop_at=callback_url)
    landed = await dashboard.get(callback.removeprefix(auth.settings.public_url("tasks")))
    assert landed.status_code == 303, landed.text
    assert landed.headers["location"] == "/tasks?status=open"
    session = session_of(auth.settings, landed, "tasks")
    assert session["principal"] == {
        "public_id": polly.public_id,
        "role": "worker",
        "username": "polly",
        "full_name": "Polly Parrot",  # the token's name claim: the header greets by it
    }
    assert "oauth_pending" not in session, "a new session at sign-in"

    # SSO: a second sign-in through auth needs no password while auth's session lasts
    again = await dashboard.get("/login")
    second = await browser.follow(
        await browser.client.get(again.headers["location"]), stop_at=callback_url
    )
    assert isinstance(second, str) and "code=" in second

    logout = await dashboard.post("/logout")
    assert logout.status_code == 303
    end_session = logout.headers["location"]
    assert end_session.startswith(f"{auth.url}/oauth/end-session?")
    assert "id_token_hint" in parse_qs(urlsplit(end_session).query)
    home = f"{auth.settings.public_url('tasks')}/"
    signed_out = await browser.client.get(end_session)
    assert signed_out.status_code == 200, "signed out at auth without a confirmation page"
    # the page stays and says so: going on to the dashboard would only ask for a sign-in
    assert "<h1>You have signed out</h1>" in signed_out.text
    assert f'<a href="{home}">Sign in again</a>' in signed_out.text
    assert "http-equiv" not in signed_out.text
    assert frontchannel_urls(signed_out.text) == {
        f"{auth.settings.public_url(s)}/oauth/frontchannel-logout?iss={quote(auth.url, safe='')}"
        for s in ("tasks", "billing", "analytics", "notifications")
    }
    assert dashboard.cookies.get("ates_tasks_session") is None, "the session is gone"

    fresh = await dashboard.get("/login")
    after = await browser.follow(
        await browser.client.get(fresh.headers["location"]), stop_at=callback_url
    )
    assert isinstance(after, httpx.Response) and "Sign in to aTES" in after.text


async def test_a_callback_that_was_not_started_here_is_refused(
    auth: AuthServer, dashboard: httpx.AsyncClient
) -> None:
    forged = await dashboard.get("/oauth/callback", params={"code": "stolen", "state": "guess"})
    assert forged.status_code == 400
    assert "expired or was already used" in forged.text
    assert "ates_tasks_session" not in forged.cookies or "principal" not in session_of(
        auth.settings, forged, "tasks"
    )


async def test_logout_without_a_hint_asks_first(auth: AuthServer, browser: Browser) -> None:
    await auth.person("polly")
    async with httpx.AsyncClient(timeout=10) as http:
        form = login_form_fields((await http.get(f"{auth.url}/login")).text)
        await http.post(
            f"{auth.url}/login", data={**form, "username": "polly", "password": PASSWORD}
        )
        home = f"{auth.settings.public_url('tasks')}/"
        link = f"{auth.url}/oauth/end-session"
        params = {"client_id": "tasks", "post_logout_redirect_uri": home}
        asked = await http.get(link, params=params)
        assert asked.status_code == 200
        assert "Sign out of aTES?" in asked.text
        assert (await http.get(f"{auth.url}/")).status_code == 200, "still signed in"

        confirmed = await http.post(link, data={**login_form_fields(asked.text)})
        assert confirmed.status_code == 200
        assert "You have signed out" in confirmed.text
        assert f'<a href="{home}">Sign in again</a>' in confirmed.text
        assert (await http.get(f"{auth.url}/")).status_code == 303, "signed out"


def frontchannel_urls(html: str) -> set[str]:
    return {unescape(url) for url in re.findall(r'<iframe src="([^"]+)" hidden', html)}


async def _signed_in_to_dashboard(
    auth: AuthServer, browser: Browser, dashboard: httpx.AsyncClient
) -> str:
    """Polly signs in to the tasks dashboard; the session cookie it set."""
    await auth.person("polly")
    callback_url = f"{auth.settings.public_url('tasks')}/oauth/callback"
    start = await dashboard.get("/login")
    callback = await browser.sign_in(
        start.headers["location"], "polly", PASSWORD, stop_at=callback_url
    )
    landed = await dashboard.get(callback.removeprefix(auth.settings.public_url("tasks")))
    assert landed.status_code == 303
    assert "principal" in session_of(auth.settings, landed, "tasks")
    assert (await dashboard.get("/")).status_code == 200
    cookie = dashboard.cookies.get("ates_tasks_session")
    assert cookie
    return cookie


async def test_signing_out_at_auth_ends_the_dashboard_sessions_too(
    auth: AuthServer, browser: Browser, dashboard: httpx.AsyncClient
) -> None:
    await _signed_in_to_dashboard(auth, browser, dashboard)
    signed_out = await browser.client.post(f"{auth.url}/logout")  # auth's own button
    assert signed_out.status_code == 200
    tasks = auth.settings.public_url("tasks")
    frame = next(url for url in frontchannel_urls(signed_out.text) if url.startswith(tasks))
    cleared = await dashboard.get(frame.removeprefix(tasks))
    assert cleared.status_code == 200
    # auth's page may frame it (and nothing else may)
    assert cleared.headers["content-security-policy"] == (
        f"default-src 'none'; frame-ancestors {auth.url}"
    )
    assert "x-frame-options" not in cleared.headers
    assert dashboard.cookies.get("ates_tasks_session") is None, "the dashboard session ended"

    wrong_issuer = await dashboard.get("/oauth/frontchannel-logout", params={"iss": "http://x"})
    assert wrong_issuer.status_code == 400


async def _with_cookie(dashboard: httpx.AsyncClient, cookie: str) -> httpx.Response:
    """GET / with only this copy of the session cookie, as someone who copied it would."""
    dashboard.cookies.clear()
    dashboard.cookies.set("ates_tasks_session", cookie, domain=dashboard.base_url.host)
    return await dashboard.get("/")


async def test_a_copied_dashboard_cookie_is_worth_nothing_after_logout(
    auth: AuthServer, browser: Browser, dashboard: httpx.AsyncClient
) -> None:
    copied = await _signed_in_to_dashboard(auth, browser, dashboard)
    assert (await dashboard.post("/logout")).status_code == 303
    replayed = await _with_cookie(dashboard, copied)
    assert replayed.status_code == 303
    assert replayed.headers["location"].startswith("/login?next=")


async def test_a_copied_dashboard_cookie_is_worth_nothing_after_a_front_channel_logout(
    auth: AuthServer, browser: Browser, dashboard: httpx.AsyncClient
) -> None:
    copied = await _signed_in_to_dashboard(auth, browser, dashboard)
    cleared = await dashboard.get("/oauth/frontchannel-logout", params={"iss": auth.url})
    assert cleared.status_code == 200
    assert (await _with_cookie(dashboard, copied)).status_code == 303


async def test_a_dashboard_session_ends_twelve_hours_after_sign_in_however_busy(
    auth: AuthServer, browser: Browser, dashboard: httpx.AsyncClient
) -> None:
    await _signed_in_to_dashboard(auth, browser, dashboard)
    page = await dashboard.get("/")
    assert page.status_code == 200
    assert "max-age=28800" in page.headers["set-cookie"].lower(), "8 hours idle"
    db = Database(auth.settings.database_url("tasks"))
    try:
        await twelve_hours_later(db)
    finally:
        await db.dispose()
    expired = await dashboard.get("/")
    assert expired.status_code == 303
    assert expired.headers["location"].startswith("/login?next=")

"""Auth's login page: CSRF, wrong passwords, the failure limit, sessions, deactivation."""

from __future__ import annotations

import httpx
import pytest

from ates.platform.login import authorization_request
from ates.platform.security import RemoteJwks, TokenVerifier
from ates.services.auth.commands import ChangePerson, change_person
from tests.integration.auth.conftest import (
    CLI_REDIRECT,
    PASSWORD,
    AuthServer,
    Browser,
    authorize,
    login_form_fields,
    refresh,
    tokens_for,
    twelve_hours_later,
)

pytestmark = pytest.mark.integration


async def _post_login(
    http: httpx.AsyncClient, auth: AuthServer, username: str, password: str, **extra: str
) -> httpx.Response:
    form = login_form_fields((await http.get(f"{auth.url}/login")).text)
    return await http.post(
        f"{auth.url}/login",
        data={**form, "username": username, "password": password, **extra},
    )


async def _signed_in(http: httpx.AsyncClient, auth: AuthServer) -> bool:
    home = await http.get(f"{auth.url}/")
    return home.status_code == 200


async def test_sign_in_starts_a_new_http_only_session(auth: AuthServer) -> None:
    await auth.person("polly", full_name="Polly Parrot")
    async with httpx.AsyncClient(timeout=10) as http:
        form = await http.get(f"{auth.url}/login")
        assert form.headers["x-frame-options"] == "DENY", "no framing of the login form"
        before = form.cookies.get("ates_auth_session")
        assert not await _signed_in(http, auth)
        response = await _post_login(http, auth, "polly", PASSWORD)
        assert response.status_code == 303
        assert response.headers["location"] == "/"
        cookie = response.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        assert response.cookies["ates_auth_session"] != before
        home = await http.get(f"{auth.url}/")
        assert home.status_code == 200
        assert "Polly Parrot" in home.text

        logged_out = await http.post(f"{auth.url}/logout")
        assert logged_out.status_code == 200
        assert "You have signed out" in logged_out.text
        assert not await _signed_in(http, auth)


async def test_the_login_form_is_csrf_protected(auth: AuthServer) -> None:
    await auth.person("polly")
    async with httpx.AsyncClient(timeout=10) as http:
        forged = await _post_login(http, auth, "polly", PASSWORD, csrf_token="forged")
        assert forged.status_code == 400
        assert "expired" in forged.text
        assert not await _signed_in(http, auth)


async def test_wrong_password_and_unknown_user_get_the_same_clear_message(
    auth: AuthServer,
) -> None:
    await auth.person("polly")
    async with httpx.AsyncClient(timeout=10) as http:
        for username, password in (("polly", "wrong password"), ("nobody", PASSWORD)):
            response = await _post_login(http, auth, username, password)
            assert response.status_code == 401
            assert "Wrong username or password." in response.text
            assert not await _signed_in(http, auth)


async def test_repeated_failures_lock_the_username_for_a_while(auth: AuthServer) -> None:
    await auth.person("polly")
    await auth.person("kesha")
    async with httpx.AsyncClient(timeout=10) as http:
        for _ in range(5):
            assert (await _post_login(http, auth, "polly", "guess")).status_code == 401
        locked = await _post_login(http, auth, "polly", PASSWORD)
        assert locked.status_code == 429
        assert "Too many failed sign-ins" in locked.text
        assert "5 minutes" in locked.text
        other = await _post_login(http, auth, "kesha", PASSWORD)
        assert other.status_code == 303, "other usernames are not affected"


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/", "/\\evil.example", "javascript:x"]
)
async def test_next_never_leaves_auth(auth: AuthServer, target: str) -> None:
    await auth.person("polly")
    async with httpx.AsyncClient(timeout=10) as http:
        response = await _post_login(http, auth, "polly", PASSWORD, next=target)
    assert response.status_code == 303
    assert response.headers["location"] == "/"


async def test_a_deactivated_person_is_locked_out(auth: AuthServer, browser: Browser) -> None:
    polly = await auth.person("polly")
    ada = await auth.person("ada", role="admin")
    tokens = await tokens_for(auth, browser, "polly")  # leaves polly signed in at auth
    verifier = TokenVerifier(RemoteJwks(f"{auth.url}/.well-known/jwks.json"), issuer=auth.url)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    async with httpx.AsyncClient(base_url=auth.url, timeout=10) as http:
        assert (await http.get("/api/me", headers=headers)).status_code == 200

        async with auth.runtime.uow() as uow:
            await change_person(
                uow,
                ChangePerson(
                    public_id=polly.public_id, active=False, actor_public_id=ada.public_id
                ),
            )

        # at once, at auth: its API and userinfo look the person up
        assert (await http.get("/api/me", headers=headers)).status_code == 401
        assert (await http.get("/oauth/userinfo", headers=headers)).status_code == 401
        # refresh tokens were revoked with the deactivation
        refused = await refresh(auth, tokens["refresh_token"])
        assert refused.json()["error"] == "invalid_grant"
        # elsewhere the access token verifies until it expires (at most the token lifetime)
        assert (
            await verifier.verify(tokens["access_token"])
        ).public_id.hex == polly.public_id.replace("-", "")

    # the sign-in session at auth is over, and signing in again is refused
    with pytest.raises(AssertionError, match="sign-in did not reach the client"):
        await authorize(auth, browser, "polly")
    async with httpx.AsyncClient(timeout=10) as http:
        again = await _post_login(http, auth, "polly", PASSWORD)
        assert again.status_code == 401
        assert "deactivated" in again.text

    async with auth.runtime.uow() as uow:
        await change_person(uow, ChangePerson(public_id=polly.public_id, active=True))
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await _post_login(http, auth, "polly", PASSWORD)).status_code == 303


async def test_a_copied_auth_cookie_gets_no_code_after_logout(
    auth: AuthServer, browser: Browser
) -> None:
    await auth.person("polly")
    await authorize(auth, browser, "polly")  # signed in at auth
    copied = browser.client.cookies.get("ates_auth_session")
    assert copied
    assert (await browser.client.post(f"{auth.url}/logout")).status_code == 200

    async with httpx.AsyncClient(timeout=10) as thief:
        thief.cookies.set("ates_auth_session", copied, domain="127.0.0.1")
        assert not await _signed_in(thief, auth)
        started = authorization_request(
            f"{auth.url}/oauth/authorize", "ates-cli", CLI_REDIRECT, "openid profile"
        )
        asked = await thief.get(started.url)
        assert asked.status_code == 303
        assert asked.headers["location"].startswith("/login?"), "a password, not a code"


async def test_an_auth_session_ends_twelve_hours_after_sign_in(
    auth: AuthServer, browser: Browser
) -> None:
    await auth.person("polly")
    async with httpx.AsyncClient(timeout=10) as http:
        assert (await _post_login(http, auth, "polly", PASSWORD)).status_code == 303
        assert await _signed_in(http, auth)
        await twelve_hours_later(auth.runtime.db)
        assert not await _signed_in(http, auth)

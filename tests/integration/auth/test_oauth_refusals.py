"""What the provider must refuse (RFC 9700, OWASP ASVS 5): each refusal next to the
accepted request it differs from, so a test fails if the refusal is not the reason."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri

from ates.platform.login import authorization_request, first_party_client_secret
from ates.platform.security import API_AUDIENCE
from tests.integration.auth.conftest import (
    CLI_REDIRECT,
    AuthServer,
    Browser,
    authorize,
    exchange,
    refresh,
    tokens_for,
)

pytestmark = pytest.mark.integration


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _authorize_url(auth: AuthServer, response_type: str, **params: str) -> str:
    """An authorization request of ``ates-cli`` made by hand: ``authorization_request``
    always asks for a code with an S256 challenge."""
    url: str = prepare_grant_uri(
        f"{auth.url}/oauth/authorize",
        client_id="ates-cli",
        response_type=response_type,
        redirect_uri=CLI_REDIRECT,
        state="s1",
        **params,
    )
    return url


async def _get(auth: AuthServer, path: str, token: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as http:
        return await http.get(f"{auth.url}{path}", headers={"Authorization": f"Bearer {token}"})


def _refused_with(response: httpx.Response, error: str, status: int = 400) -> None:
    """An OAuth error answer (RFC 6749 §5.2): ``status`` and the ``error`` code."""
    assert response.status_code == status, response.text
    assert response.json()["error"] == error


async def _refused_everywhere(auth: AuthServer, token: str) -> None:
    for path in ("/api/me", "/oauth/userinfo"):
        response = await _get(auth, path, token)
        assert response.status_code == 401, (path, response.text)


async def test_a_tampered_token_is_refused(auth: AuthServer, browser: Browser) -> None:
    await auth.person("polly")
    token = (await tokens_for(auth, browser, "polly"))["access_token"]
    assert (await _get(auth, "/api/me", token)).status_code == 200

    header, payload, signature = token.split(".")
    claims = json.loads(_unb64(payload))
    claims["role"] = "admin"
    promoted = ".".join([header, _b64(json.dumps(claims).encode()), signature])
    bad_signature = ".".join([header, payload, _b64(_unb64(signature)[::-1])])
    await _refused_everywhere(auth, promoted)
    await _refused_everywhere(auth, bad_signature)


async def test_an_unsigned_alg_none_token_is_refused(auth: AuthServer) -> None:
    polly = await auth.person("polly")
    now = int(time.time())
    claims = {
        "iss": auth.url,
        "aud": API_AUDIENCE,
        "sub": polly.public_id,
        "role": "worker",
        "preferred_username": "polly",
        "scope": "openid profile",
        "iat": now,
        "exp": now + 300,
    }
    header = {"alg": "none", "typ": "JWT"}
    unsigned = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}."
    await _refused_everywhere(auth, unsigned)


@pytest.mark.parametrize(
    ("client_id", "redirect_uri"),
    [
        ("ates-cli", "https://evil.example/callback"),
        ("ates-cli", "http://127.0.0.1:53682/elsewhere"),  # loopback: any port, same path
        ("ates-cli", "http://localhost:53682/callback"),  # registered host is 127.0.0.1
        ("tasks", "http://127.0.0.1:20001/oauth/callback/"),  # dashboards: exact match
        ("tasks", "http://127.0.0.1:20009/oauth/callback"),
        ("nobody", "http://127.0.0.1:20001/oauth/callback"),
    ],
)
async def test_an_unregistered_redirect_uri_is_refused_without_redirecting(
    auth: AuthServer, client_id: str, redirect_uri: str
) -> None:
    started = authorization_request(
        f"{auth.url}/oauth/authorize", client_id, redirect_uri, "openid"
    )
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(started.url)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "not valid" in response.text


async def test_the_registered_redirect_uris_are_accepted(auth: AuthServer) -> None:
    tasks_callback = f"{auth.settings.public_url('tasks')}/oauth/callback"
    for client_id, redirect_uri in (("ates-cli", CLI_REDIRECT), ("tasks", tasks_callback)):
        started = authorization_request(
            f"{auth.url}/oauth/authorize", client_id, redirect_uri, "openid"
        )
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.get(started.url)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")


async def test_a_reused_code_is_refused_and_revokes_what_it_issued(
    auth: AuthServer, browser: Browser
) -> None:
    await auth.person("polly")
    code, started = await authorize(auth, browser, "polly")
    first = await exchange(auth, code, started.verifier)
    assert first.status_code == 200, first.text

    _refused_with(await exchange(auth, code, started.verifier), "invalid_grant")
    _refused_with(await refresh(auth, first.json()["refresh_token"]), "invalid_grant")


async def test_a_missing_or_wrong_pkce_verifier_is_refused(
    auth: AuthServer, browser: Browser
) -> None:
    await auth.person("polly")
    code, started = await authorize(auth, browser, "polly")
    _refused_with(await exchange(auth, code, None), "invalid_request")
    # a failed exchange burns the code: it cannot be retried with the right verifier
    _refused_with(await exchange(auth, code, started.verifier), "invalid_grant")

    code, started = await authorize(auth, browser, "polly")
    _refused_with(await exchange(auth, code, started.verifier[::-1]), "invalid_grant")

    code, started = await authorize(auth, browser, "polly")
    assert (await exchange(auth, code, started.verifier)).status_code == 200


@pytest.mark.parametrize(
    "pkce",
    [
        {},
        {"code_challenge": "x" * 43, "code_challenge_method": "plain"},
        {"code_challenge": "x" * 43},
    ],
    ids=["no-challenge", "plain", "no-method-means-plain"],
)
async def test_authorize_requires_an_s256_challenge(
    auth: AuthServer, browser: Browser, pkce: dict[str, str]
) -> None:
    await auth.person("polly")
    url = _authorize_url(auth, "code", scope="openid", **pkce)
    callback = await browser.sign_in(url, "polly", "correct horse battery", stop_at=CLI_REDIRECT)
    query = parse_qs(urlsplit(callback).query)
    assert query["error"] == ["invalid_request"]
    assert "code" not in query
    assert query["state"] == ["s1"]


async def test_no_implicit_and_no_password_grant(auth: AuthServer) -> None:
    await auth.person("polly")
    implicit = _authorize_url(auth, "token")
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(implicit)
        password = await http.post(
            f"{auth.url}/oauth/token",
            data={
                "grant_type": "password",
                "username": "polly",
                "password": "correct horse battery",
                "client_id": "ates-cli",
            },
        )
    assert answer.status_code == 302
    assert parse_qs(urlsplit(answer.headers["location"]).query)["error"] == [
        "unsupported_response_type"
    ]
    _refused_with(password, "unsupported_grant_type")


async def test_a_replayed_refresh_token_revokes_the_whole_family(
    auth: AuthServer, browser: Browser
) -> None:
    await auth.person("polly")
    first = await tokens_for(auth, browser, "polly")
    rotated = await refresh(auth, first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (await _get(auth, "/api/me", second["access_token"])).status_code == 200

    _refused_with(await refresh(auth, first["refresh_token"]), "invalid_grant")  # a replay
    _refused_with(await refresh(auth, second["refresh_token"]), "invalid_grant")  # its family


async def test_a_dashboard_client_must_present_its_secret(
    auth: AuthServer, browser: Browser
) -> None:
    await auth.person("polly")
    callback = f"{auth.settings.public_url('billing')}/oauth/callback"

    async def signed_in_and_exchanged(client_secret: str | None) -> httpx.Response:
        code, started = await authorize(
            auth, browser, "polly", client_id="billing", redirect_uri=callback
        )
        return await exchange(
            auth,
            code,
            started.verifier,
            client_id="billing",
            client_secret=client_secret,
            redirect_uri=callback,
        )

    _refused_with(await signed_in_and_exchanged(None), "invalid_client", 401)
    wrong = await signed_in_and_exchanged("x" * 64)
    assert wrong.status_code == 401
    right = await signed_in_and_exchanged(first_party_client_secret(auth.settings, "billing"))
    assert right.status_code == 200, right.text
    assert "refresh_token" not in right.json()  # dashboards keep a session, not tokens


async def test_one_code_redeemed_twice_at_once_gives_one_token(
    auth: AuthServer, browser: Browser
) -> None:
    await auth.person("polly")
    code, started = await authorize(auth, browser, "polly")
    answers = await asyncio.gather(*(exchange(auth, code, started.verifier) for _ in range(3)))
    assert sorted(a.status_code for a in answers) == [200, 400, 400]


async def test_prompt_none_without_a_session_answers_login_required(auth: AuthServer) -> None:
    started = authorization_request(
        f"{auth.url}/oauth/authorize", "ates-cli", CLI_REDIRECT, "openid"
    )
    async with httpx.AsyncClient(timeout=10) as http:
        answer = await http.get(started.url + "&prompt=none")
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["error"] == ["login_required"]
    assert query["state"] == [started.state]


async def test_prompt_login_asks_for_the_password_again(auth: AuthServer, browser: Browser) -> None:
    await auth.person("polly")
    await authorize(auth, browser, "polly")  # signed in at auth now
    started = authorization_request(
        f"{auth.url}/oauth/authorize", "ates-cli", CLI_REDIRECT, "openid"
    )
    answer = await browser.follow(
        await browser.client.get(started.url + "&prompt=login"), stop_at=CLI_REDIRECT
    )
    assert isinstance(answer, httpx.Response) and "Sign in to aTES" in answer.text
    callback = await browser.sign_in(
        started.url + "&prompt=login", "polly", "correct horse battery", stop_at=CLI_REDIRECT
    )
    assert "code=" in callback

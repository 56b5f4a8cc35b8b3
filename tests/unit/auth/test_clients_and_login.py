"""First-party clients, the login helpers every dashboard uses, and token verification."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from ates.platform.login import authorization_request, first_party_client_secret, safe_next
from ates.platform.security import InvalidToken
from ates.services.auth.oauth.clients import Client, first_party_clients
from tests.support import ISSUER, TokenFactory, make_settings


@pytest.fixture
def clients(tmp_path: Path) -> dict[str, Client]:
    return first_party_clients(make_settings(tmp_path, None, secret_key="s" * 32))


def test_every_dashboard_and_the_cli_is_a_client(clients: dict[str, Client]) -> None:
    assert set(clients) == {"tasks", "billing", "analytics", "notifications", "auth", "ates-cli"}
    tasks = clients["tasks"]
    assert tasks.redirect_uris == ("http://127.0.0.1:8001/oauth/callback",)
    assert tasks.check_endpoint_auth_method("client_secret_basic", "token")
    assert not tasks.check_endpoint_auth_method("none", "token"), "dashboards are confidential"
    assert not tasks.check_grant_type("refresh_token")
    cli = clients["ates-cli"]
    assert cli.check_endpoint_auth_method("none", "token")
    assert not cli.check_client_secret(""), "a public client has no secret to match"
    assert cli.check_grant_type("refresh_token")
    assert cli.check_redirect_uri("http://127.0.0.1:40000/callback")
    assert not tasks.check_response_type("token")


def test_scopes_are_cut_to_what_auth_offers(clients: dict[str, Client]) -> None:
    assert clients["tasks"].get_allowed_scope("openid profile admin email") == (
        "openid profile email"
    )
    assert clients["tasks"].get_allowed_scope(None) == ""


def test_client_secrets_are_per_client_and_per_installation(tmp_path: Path) -> None:
    one = make_settings(tmp_path, None, secret_key="a" * 32)
    two = make_settings(tmp_path, None, secret_key="b" * 32)
    assert first_party_client_secret(one, "tasks") == first_party_client_secret(one, "tasks")
    assert first_party_client_secret(one, "tasks") != first_party_client_secret(one, "billing")
    assert first_party_client_secret(one, "tasks") != first_party_client_secret(two, "tasks")
    assert first_party_clients(one)["tasks"].check_client_secret(
        first_party_client_secret(one, "tasks")
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/tasks?status=open", "/tasks?status=open"),
        (None, "/"),
        ("", "/"),
        ("https://evil.example/", "/"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("/ok\r\nSet-Cookie: x=1", "/"),
    ],
)
def test_safe_next_keeps_people_on_this_site(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


def test_an_authorization_request_carries_pkce_s256_state_and_nonce() -> None:
    started = authorization_request(
        "http://127.0.0.1:8000/oauth/authorize", "tasks", "http://x/cb", "openid profile"
    )
    query = {k: v[0] for k, v in parse_qs(urlsplit(started.url).query).items()}
    assert query == {
        "response_type": "code",
        "client_id": "tasks",
        "redirect_uri": "http://x/cb",
        "scope": "openid profile",
        "state": started.state,
        "code_challenge": create_s256_code_challenge(started.verifier),
        "code_challenge_method": "S256",
        "nonce": started.nonce,
    }
    assert len(started.verifier) >= 43
    again = authorization_request("http://a/authorize", "tasks", "http://x/cb", "openid")
    assert {again.state, again.verifier} & {started.state, started.verifier} == set()


def _b64(value: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


async def test_the_verifier_refuses_alg_none_and_hands_back_claims(tokens: TokenFactory) -> None:
    verifier = tokens.verifier()
    sub = uuid.uuid4()
    claims = await verifier.verify_claims(tokens.token("admin", sub, scope="openid"))
    assert claims["scope"] == "openid" and claims["sub"] == str(sub)
    assert (await verifier.verify(tokens.token("admin", sub))).public_id == sub

    now = int(time.time())
    unsigned = (
        _b64({"alg": "none"})
        + "."
        + _b64(
            {"iss": ISSUER, "aud": "ates-api", "sub": str(sub), "role": "admin", "exp": now + 60}
        )
        + "."
    )
    with pytest.raises(InvalidToken, match="algorithm"):
        await verifier.verify(unsigned)
    with pytest.raises(InvalidToken):
        await verifier.verify_claims(tokens.token("admin", sub, aud="elsewhere"))

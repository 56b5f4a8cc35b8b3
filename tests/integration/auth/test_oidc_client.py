"""A third-party OpenID Connect client (Authlib's httpx client, not our code) signs in
against the running auth service: discovery → authorize with PKCE → login form → token →
userinfo, and checks every signature with the published JWKS."""

from __future__ import annotations

import warnings

import pytest
from authlib.common.security import generate_token
from authlib.oidc.core import CodeIDToken
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc import jwt
from joserfc.jwk import KeySet

from ates.platform.security import API_AUDIENCE
from tests.integration.auth.conftest import PASSWORD, AuthServer, Browser

with warnings.catch_warnings():
    # Authlib 1.9 deprecates its client on plain httpx in favour of the httpx2 package
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client

pytestmark = pytest.mark.integration

REDIRECT_URI = "http://127.0.0.1:53682/callback"  # loopback: any port is accepted


async def test_third_party_client_signs_in_and_verifies_with_jwks(
    auth: AuthServer, browser: Browser
) -> None:
    polly = await auth.person("polly", full_name="Polly Parrot", email="polly@example.com")

    async with AsyncOAuth2Client(
        client_id="ates-cli",
        redirect_uri=REDIRECT_URI,
        scope="openid profile email",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    ) as client:
        discovery = (
            await client.request(
                "GET", f"{auth.url}/.well-known/openid-configuration", withhold_token=True
            )
        ).json()
        metadata = OpenIDProviderMetadata(discovery)
        metadata.validate()
        assert metadata["issuer"] == auth.url
        assert metadata["jwks_uri"] == f"{auth.url}/.well-known/jwks.json"
        assert metadata["code_challenge_methods_supported"] == ["S256"]

        verifier = generate_token(64)
        nonce = generate_token(20)
        url, state = client.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
        callback = await browser.sign_in(url, "polly", PASSWORD, stop_at=REDIRECT_URI)

        token = await client.fetch_token(
            metadata["token_endpoint"],
            authorization_response=callback,
            state=state,
            code_verifier=verifier,
        )
        assert token["token_type"].lower() == "bearer"
        assert token["expires_in"] == auth.settings.access_token_ttl_seconds
        assert token["refresh_token"]

        userinfo = (await client.request("GET", metadata["userinfo_endpoint"])).json()
        keys = KeySet.import_key_set(
            (await client.request("GET", metadata["jwks_uri"], withhold_token=True)).json()
        )

    assert userinfo == {
        "sub": polly.public_id,
        "name": "Polly Parrot",
        "preferred_username": "polly",
        "role": "worker",
        "email": "polly@example.com",
        "email_verified": False,
    }

    access = jwt.decode(token["access_token"], keys, algorithms=["RS256"])
    assert access.header["kid"] in {k.kid for k in keys.keys}
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": auth.url},
        aud={"essential": True, "value": API_AUDIENCE},
        sub={"essential": True, "value": polly.public_id},
        role={"essential": True, "value": "worker"},
        preferred_username={"essential": True, "value": "polly"},
        exp={"essential": True},
        iat={"essential": True},
    ).validate(access.claims)
    assert access.claims["exp"] - access.claims["iat"] == auth.settings.access_token_ttl_seconds

    id_token = jwt.decode(token["id_token"], keys, algorithms=["RS256"])
    claims = CodeIDToken(
        id_token.claims,
        id_token.header,
        options={
            "iss": {"value": auth.url},
            "aud": {"values": ["ates-cli"]},
            "nonce": {"value": nonce},
        },
        params={"nonce": nonce, "access_token": token["access_token"]},
    )
    claims.validate()
    assert claims["sub"] == polly.public_id


async def test_discovery_points_at_the_keys_the_tokens_use(auth: AuthServer) -> None:
    async with AsyncOAuth2Client() as client:
        discovery = (
            await client.request(
                "GET", f"{auth.url}/.well-known/openid-configuration", withhold_token=True
            )
        ).json()
        keys = (await client.request("GET", discovery["jwks_uri"], withhold_token=True)).json()
    assert keys["keys"], "no published keys"
    for key in keys["keys"]:
        assert key["kty"] == "RSA" and key["kid"]
        assert "d" not in key and "p" not in key, "a private part is published"

"""The OAuth 2.1 / OpenID Connect provider, assembled from Authlib's parts.

- authorization code grant with PKCE, S256 only and required of every client;
- OpenID Connect: ``id_token`` for the ``openid`` scope, nonce replay check;
- refresh tokens (command-line client only), rotated on every use, a replay revokes the
  family;
- RP-initiated logout (the dashboards' "Log out" ends the sign-in at auth too).

No implicit, hybrid, password or client-credentials grant is registered. Access tokens are
JWTs (RFC 9068 profile) with the claims of DESIGN.md §4, signed by the key store's
current key. Every hook runs in Authlib's worker thread and reaches the database through
``bridge.current().run``.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

from authlib.oauth2.rfc6749 import AuthorizationServer, InvalidRequestError, OAuth2Request
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant, RefreshTokenGrant
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode
from authlib.oidc.rpinitiated import EndSessionEndpoint, EndSessionRequest
from fastapi.responses import JSONResponse, Response
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import select

from ates.config import Settings
from ates.platform.security import API_AUDIENCE
from ates.services.auth import domain
from ates.services.auth.models import AuthorizationCode, Person, RefreshToken
from ates.services.auth.oauth import store
from ates.services.auth.oauth.bridge import current
from ates.services.auth.oauth.clients import SCOPES, Client
from ates.services.auth.oauth.keys import ALGORITHM

TOKEN_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]


def _identity(person: Person) -> domain.Identity:
    return domain.Identity(
        public_id=person.public_id,
        username=person.username,
        role=person.role,
        full_name=person.full_name,
    )


async def _active_person(public_id: str) -> Person | None:
    person = await current().session.scalar(select(Person).where(Person.public_id == public_id))
    return person if person is not None and person.active else None


def user_claims(person: Person, scope: str) -> dict[str, Any]:
    """OpenID claims about a person for the scopes granted (id_token and userinfo)."""
    scopes = set(scope.split())
    claims: dict[str, Any] = {"sub": person.public_id}
    if "profile" in scopes:
        claims.update(name=person.full_name, preferred_username=person.username, role=person.role)
    if "email" in scopes:
        claims.update(email=person.email, email_verified=False)
    return claims


# --- what Authlib's hooks get back from the store ---------------------------------------


@dataclass(frozen=True)
class IssuedCode:
    """An authorization code as Authlib's grant, PKCE and OpenID parts expect it."""

    row: AuthorizationCode

    @property
    def code_challenge(self) -> str:
        return self.row.code_challenge

    @property
    def code_challenge_method(self) -> str:
        return self.row.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope

    def get_nonce(self) -> str | None:
        return self.row.nonce

    def get_auth_time(self) -> int:
        return int(self.row.auth_time.timestamp())

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> list[str]:
        return ["pwd"]


@dataclass(frozen=True)
class IssuedRefreshToken:
    row: RefreshToken

    def check_client(self, client: Client) -> bool:
        return client.client_id == self.row.client_id

    def get_scope(self) -> str:
        return self.row.scope


# --- grants and extensions --------------------------------------------------------------


class RequireS256(CodeChallenge):
    """PKCE for every client, S256 only: Authlib's extension accepts no challenge at the
    authorization endpoint and the ``plain`` method, which RFC 9700 rules out."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: Any) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError(
                "PKCE is required: send 'code_challenge' with 'code_challenge_method=S256'."
            )
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256.")
        super().validate_code_challenge(grant, redirect_uri)


class CodeGrant(AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        call = current()
        data = request.payload.data
        call.run(
            store.save_code(
                call.session,
                code,
                client_id=request.client.client_id,
                redirect_uri=request.payload.redirect_uri,
                scope=request.scope or "",
                person_public_id=request.user.public_id,
                code_challenge=data["code_challenge"],
                code_challenge_method=data["code_challenge_method"],
                nonce=data.get("nonce"),
                auth_time=call.auth_time or call.now,
                now=call.now,
            )
        )

    def query_authorization_code(self, code: str, client: Client) -> IssuedCode | None:
        call = current()
        row = call.run(store.claim_code(call.session, code, client.client_id, call.now))
        return IssuedCode(row) if row is not None else None

    def delete_authorization_code(self, authorization_code: IssuedCode) -> None:
        pass  # claim_code already marked it used; the row stays to recognise a replay

    def authenticate_user(self, authorization_code: IssuedCode) -> Person | None:
        return current().run(_active_person(authorization_code.row.person_public_id))


class RotatingRefreshGrant(RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotation (Authlib's default is off)

    def authenticate_refresh_token(self, refresh_token: str) -> IssuedRefreshToken | None:
        call = current()
        client_id = self.request.client.client_id
        row = call.run(store.claim_refresh_token(call.session, refresh_token, client_id, call.now))
        return IssuedRefreshToken(row) if row is not None else None

    def authenticate_user(self, refresh_token: IssuedRefreshToken) -> Person | None:
        return current().run(_active_person(refresh_token.row.person_public_id))

    def revoke_old_credential(self, refresh_token: IssuedRefreshToken) -> None:
        call = current()
        call.run(store.mark_used(call.session, refresh_token.row, call.now))


class OpenIDConnect(OpenIDCode):
    def __init__(self, settings: Settings) -> None:
        super().__init__(require_nonce=False)
        self.issuer = settings.issuer
        self.ttl = settings.access_token_ttl_seconds

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        call = current()
        return call.run(store.nonce_used(call.session, request.payload.client_id, nonce))

    def resolve_client_private_key(self, client: Client) -> RSAKey:
        return current().signing_key

    def get_client_algorithm(self, client: Client) -> str:
        return ALGORITHM

    def get_encode_header(self, client: Client) -> dict[str, str]:
        return {"alg": ALGORITHM, "kid": str(current().signing_key.kid)}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        now = int(time.time())
        return {"iss": self.issuer, "aud": [client.client_id], "iat": now, "exp": now + self.ttl}

    def generate_user_info(self, user: Person, scope: str) -> dict[str, Any]:
        return user_claims(user, scope)


class EndSession(EndSessionEndpoint):
    def get_server_jwks(self) -> KeySet:
        return current().public_keys

    def get_algorithms(self) -> list[str]:
        return [ALGORITHM]

    def end_session(self, end_session_request: EndSessionRequest) -> None:
        current().ended_session = True  # the route clears the cookie session

    def is_post_logout_redirect_uri_legitimate(
        self, request: OAuth2Request, uri: str, client: Client, logout_hint: str | None
    ) -> bool:
        # Every client is first-party and the URI was matched against its registration,
        # so sending the person back there after they confirmed is no open redirect.
        return True


class AccessTokens(BearerTokenGenerator):
    """Signed JWT access tokens (the claims other services verify) and opaque refresh
    tokens."""

    def __init__(self, settings: Settings) -> None:
        self.issuer = settings.issuer
        self.ttl = settings.access_token_ttl_seconds
        super().__init__(self._access_token, self._refresh_token, self.ttl)

    def _access_token(self, client: Client, grant_type: str, user: Person, scope: str) -> str:
        key = current().signing_key
        claims = domain.access_token_claims(
            _identity(user),
            issuer=self.issuer,
            audience=API_AUDIENCE,
            client_id=client.client_id,
            scope=scope or "",
            issued_at=int(time.time()),
            ttl_seconds=self.ttl,
            token_id=str(uuid.uuid4()),
        )
        return jwt.encode({"alg": ALGORITHM, "kid": str(key.kid), "typ": "at+jwt"}, claims, key)

    @staticmethod
    def _refresh_token(**_: Any) -> str:
        return secrets.token_urlsafe(32)


class Server(AuthorizationServer):
    def __init__(self, settings: Settings, clients: dict[str, Client]) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self.clients = clients
        self.register_token_generator("default", AccessTokens(settings))
        self.register_grant(CodeGrant, [RequireS256(), OpenIDConnect(settings)])
        self.register_grant(RotatingRefreshGrant)
        self.register_endpoint(EndSession)

    def query_client(self, client_id: str) -> Client | None:
        return self.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        refresh_token = token.get("refresh_token")
        if not refresh_token:
            return  # access tokens are self-contained JWTs: nothing to store
        call = current()
        previous: IssuedRefreshToken | None = request.refresh_token
        code: IssuedCode | None = request.authorization_code
        call.run(
            store.save_refresh_token(
                call.session,
                refresh_token,
                client_id=request.client.client_id,
                person_public_id=request.user.public_id,
                scope=token.get("scope", ""),
                now=call.now,
                previous=previous.row if previous else None,
                code=code.row if code else None,
            )
        )

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if not isinstance(request, OAuth2Request):
            raise TypeError("build the request with bridge.oauth_request first")
        return request

    def create_json_request(self, request: Any) -> Any:
        raise NotImplementedError("no JSON endpoints")

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        if isinstance(body, dict):
            return JSONResponse(body, status_code=status, headers=dict(headers))
        return Response(body, status_code=status, headers=dict(headers))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass  # no listeners

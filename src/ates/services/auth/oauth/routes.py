"""HTTP endpoints of the provider: discovery, JWKS, authorize, token, userinfo, logout."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, cast
from urllib.parse import urlencode

from authlib.oauth2 import OAuth2Error
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select

from ates.platform.dependencies import RuntimeDep
from ates.platform.security import InvalidToken
from ates.services.auth.models import Person
from ates.services.auth.oauth.bridge import in_worker, oauth_request
from ates.services.auth.oauth.clients import SCOPES
from ates.services.auth.oauth.keys import ALGORITHM
from ates.services.auth.oauth.provider import ProviderDep
from ates.services.auth.oauth.server import TOKEN_AUTH_METHODS, user_claims
from ates.services.auth.pages import page, signed_out_page
from ates.services.auth.session import (
    CSRF_FIELD,
    SIGNED_IN_AT,
    csrf_ok,
    csrf_token,
    end_session,
    principal,
    signed_in_person,
)

router = APIRouter(include_in_schema=False)
_bearer = HTTPBearer(auto_error=False)


def discovery_document(issuer: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth/authorize",
        "token_endpoint": f"{issuer}/oauth/token",
        "userinfo_endpoint": f"{issuer}/oauth/userinfo",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "end_session_endpoint": f"{issuer}/oauth/end-session",
        "scopes_supported": list(SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "token_endpoint_auth_methods_supported": TOKEN_AUTH_METHODS,
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login"],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "name",
            "preferred_username",
            "email",
            "role",
        ],
    }


@router.get("/.well-known/openid-configuration")
@router.get("/.well-known/oauth-authorization-server")
async def discovery(provider: ProviderDep) -> JSONResponse:
    return JSONResponse(
        discovery_document(provider.settings.issuer),
        headers={"Cache-Control": "public, max-age=300"},
    )


@router.get("/.well-known/jwks.json")
async def jwks(provider: ProviderDep) -> JSONResponse:
    key_set = await provider.keys.published()
    # short cache: verifiers refetch on an unknown kid anyway (ates.platform.security)
    return JSONResponse(key_set.as_dict(private=False), headers={"Cache-Control": "max-age=60"})


def _error_page(request: Request, message: str, status_code: int = 400) -> Response:
    return page(request, "oauth_error.html", status_code=status_code, user=None, message=message)


def _without(request: Request, *names: str) -> str:
    """This request's path and query without the given parameters."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in names]
    return request.url.path + (f"?{urlencode(kept)}" if kept else "")


@router.get("/oauth/authorize")
async def authorize(request: Request, provider: ProviderDep, runtime: RuntimeDep) -> Response:
    server = provider.server
    person = await signed_in_person(request, runtime)
    try:
        oauth = await oauth_request(request, payload_from="query")
    except OAuth2Error as error:
        return _error_page(request, error.description or error.error)
    signed_in_at = request.session.get(SIGNED_IN_AT) if person is not None else None
    auth_time = datetime.fromtimestamp(signed_in_at, UTC) if signed_in_at else None
    async with provider.call(auth_time=auth_time) as call:
        try:
            grant = await in_worker(call, server.get_consent_grant, oauth, person)
        except OAuth2Error as error:
            if error.redirect_uri:  # the client is known and its redirect URI checked
                return cast(Response, server.handle_error_response(oauth, error))
            return _error_page(request, f"This sign-in link is not valid: {error.description}")
        if person is None or grant.prompt == "login":
            # prompt=login is honoured once: the sign-in it asks for happens now
            login = {"next": _without(request, "prompt")}
            if person is not None:
                login["prompt"] = "login"
            return RedirectResponse(f"/login?{urlencode(login)}", status_code=303)
        response: Response = await in_worker(
            call, server.create_authorization_response, oauth, person, grant
        )
    return response


@router.post("/oauth/token")
async def token(request: Request, provider: ProviderDep) -> Response:
    try:
        oauth = await oauth_request(request, payload_from="form")
    except OAuth2Error as error:
        return cast(Response, provider.server.handle_error_response(None, error))
    async with provider.call() as call:
        response: Response = await in_worker(call, provider.server.create_token_response, oauth)
    return response


def _bearer_error(status_code: int, error: str, description: str) -> JSONResponse:
    return JSONResponse(
        {"detail": description, "error": error},
        status_code=status_code,
        headers={"WWW-Authenticate": f'Bearer error="{error}"'},
    )


@router.api_route("/oauth/userinfo", methods=["GET", "POST"])
async def userinfo(
    request: Request,
    provider: ProviderDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> JSONResponse:
    if credentials is None:
        return JSONResponse(
            {"detail": "missing bearer token"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        claims = await provider.verifier.verify_claims(credentials.credentials)
    except InvalidToken as error:
        return _bearer_error(401, "invalid_token", str(error))
    scope = str(claims.get("scope", ""))
    if "openid" not in scope.split():
        return _bearer_error(403, "insufficient_scope", "the token was not granted 'openid'")
    async with provider.db.reader() as session:
        person = await session.scalar(select(Person).where(Person.public_id == claims["sub"]))
    if person is None or not person.active:
        return _bearer_error(401, "invalid_token", "the account is deactivated")
    return JSONResponse(user_claims(person, scope), headers={"Cache-Control": "no-store"})


@router.api_route("/oauth/end-session", methods=["GET", "POST"])
async def end_session_endpoint(
    request: Request, provider: ProviderDep, runtime: RuntimeDep
) -> Response:
    """OpenID Connect RP-initiated logout. With an ``id_token_hint`` for the person signed
    in, they are signed out at once; otherwise they are asked to confirm (a bare link must
    not sign anyone out: that would let any page do it)."""
    server = provider.server
    person = await signed_in_person(request, runtime)
    try:
        oauth = await oauth_request(request, payload_from="both")
    except OAuth2Error as error:
        return _error_page(request, error.description or error.error)
    confirmed = request.method == "POST" and csrf_ok(request, oauth.form.get(CSRF_FIELD))
    async with provider.call() as call:
        try:
            ending = await in_worker(call, server.validate_endpoint_request, "end_session", oauth)
        except OAuth2Error as error:
            return _error_page(request, f"This sign-out link is not valid: {error.description}")
        hint = ending.id_token_claims or {}
        hint_is_theirs = person is not None and hint.get("sub") == person.public_id
        if person is not None and not (hint_is_theirs or confirmed):
            params = {k: v for k, v in oauth.payload.data.items() if k != CSRF_FIELD}
            return page(
                request,
                "logout.html",
                user=principal(person),
                params=params,
                csrf_token=csrf_token(request),
                client=ending.client,
            )
        response: Response | None = await in_worker(
            call, server.create_endpoint_response, "end_session", ending
        )
    await end_session(request, runtime)
    then = response.headers.get("location") if response is not None else None
    return signed_out_page(request, provider, then)

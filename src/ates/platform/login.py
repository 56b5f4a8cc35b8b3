"""Signing in to a service's pages through auth (OAuth 2 authorization code + PKCE).

``install_login`` adds to every service but auth (which signs people in with its own
form):

- ``GET /login?next=…`` sends the browser to auth's authorization endpoint with this
  service's first-party client, a PKCE verifier, ``state`` and ``nonce`` kept in the
  session;
- ``GET /oauth/callback`` checks ``state``, exchanges the code (with the client secret and
  the PKCE verifier), verifies the access token like any API token, and starts a new
  session holding the principal (``ates.platform.pages``);
- ``POST /logout`` ends the session here (on the server: a copied cookie is worth
  nothing after it) and sends the browser to auth's end-session
  endpoint, which ends the sign-in there too (OpenID Connect RP-initiated logout),
  ends the other dashboards' sessions through ``GET /oauth/frontchannel-logout`` in
  hidden iframes (Front-Channel Logout), and comes back to this service's home page.

The token exchange is the only call a service makes to auth besides fetching its keys.
Authlib's protocol helpers build the OAuth messages. (Not its httpx client classes:
Authlib 1.9 deprecates them on plain httpx in favour of the ``httpx2`` package.)
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import structlog
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ates.config import Settings
from ates.platform import sessions
from ates.platform.headers import origin
from ates.platform.pages import SESSION_KEY, principal_to_session
from ates.platform.runtime import Runtime
from ates.platform.security import InvalidToken

log = structlog.get_logger(__name__)

PENDING_KEY = "oauth_pending"
ID_TOKEN_KEY = "id_token"
MAX_PENDING = 3  # sign-ins started in other tabs that may still come back
SCOPE = "openid profile"

_ERROR_PAGE = """{% extends "base.html" %}
{% block title %}Sign-in problem{% endblock %}
{% block content %}
<h1>Sign-in problem</h1>
<p class="flash error" role="alert">{{ message }}</p>
<p><a href="/login">Sign in again</a></p>
{% endblock %}"""


def first_party_client_secret(settings: Settings, client_id: str) -> str:
    """The secret of a dashboard's OAuth client, derived from ``ATES_SECRET_KEY``, which
    every service of one installation shares: nothing extra to distribute or store."""
    message = f"ates-oauth-client:{client_id}".encode()
    return hmac.new(settings.secret_key.encode(), message, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class AuthorizationRequest:
    """An authorization-code request with PKCE (S256) and its secrets to keep."""

    url: str
    state: str
    verifier: str
    nonce: str


def authorization_request(
    authorize_endpoint: str, client_id: str, redirect_uri: str, scope: str
) -> AuthorizationRequest:
    verifier = generate_token(64)
    state = generate_token(32)
    nonce = generate_token(24)
    url = prepare_grant_uri(
        authorize_endpoint,
        client_id=client_id,
        response_type="code",
        redirect_uri=redirect_uri,
        scope=scope,
        state=state,
        code_challenge=create_s256_code_challenge(verifier),
        code_challenge_method="S256",
        nonce=nonce,
    )
    return AuthorizationRequest(url=url, state=state, verifier=verifier, nonce=nonce)


class TokenRefused(Exception):
    pass


def token_request(
    code: str, redirect_uri: str, verifier: str, *, client_id: str, client_secret: str | None
) -> dict[str, Any]:
    """Keyword arguments for an httpx ``post`` to the token endpoint: the form body, and
    the client's credentials (HTTP Basic) or, for a public client, its id in the body."""
    extra = {} if client_secret else {"client_id": client_id}
    body = prepare_token_request(
        "authorization_code", code=code, redirect_uri=redirect_uri, code_verifier=verifier, **extra
    )
    request: dict[str, Any] = {
        "content": body,
        "headers": {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        },
    }
    if client_secret:
        request["auth"] = httpx.BasicAuth(client_id, client_secret)
    return request


def token_response(response: httpx.Response) -> dict[str, Any]:
    """The token endpoint's answer, or :class:`TokenRefused` with its reason."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
        reason = (
            body.get("error_description") or body.get("error") if isinstance(body, dict) else None
        )
        raise TokenRefused(reason or f"HTTP {response.status_code}")
    return body


def safe_next(value: str | None, default: str = "/") -> str:
    """A local path to return to after sign-in; anything else (another host, ``//host``,
    a scheme, control characters) becomes ``default``: no open redirects."""
    if (
        not value
        or not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)
    ):
        return default
    return value


def install_login(app: FastAPI, runtime: Runtime) -> None:
    service = runtime.spec.name
    if not runtime.spec.oauth_login:
        return  # the provider's own pages sign people in locally (services/auth/pages.py)
    settings: Settings = runtime.settings
    auth_url = settings.public_url("auth")
    home = f"{settings.public_url(service)}/"
    router = APIRouter(include_in_schema=False)

    redirect_uri = f"{settings.public_url(service)}/oauth/callback"

    def problem(request: Request, message: str, status_code: int = 400) -> HTMLResponse:
        page = request.app.state.templates.env.from_string(_ERROR_PAGE)
        return HTMLResponse(page.render(message=message, user=None), status_code=status_code)

    @router.get("/login")
    async def login(request: Request, next: str = "/") -> Response:
        started = authorization_request(f"{auth_url}/oauth/authorize", service, redirect_uri, SCOPE)
        pending = dict(request.session.get(PENDING_KEY) or {})
        pending[started.state] = {"verifier": started.verifier, "next": safe_next(next)}
        request.session[PENDING_KEY] = dict(list(pending.items())[-MAX_PENDING:])
        return RedirectResponse(started.url, status_code=303)

    @router.get("/oauth/callback")
    async def callback(request: Request) -> Response:
        params = request.query_params
        pending = dict(request.session.get(PENDING_KEY) or {})
        started = pending.pop(params.get("state", ""), None)
        request.session[PENDING_KEY] = pending
        if not isinstance(started, dict):
            return problem(request, "This sign-in has expired or was already used.")
        if "error" in params:
            reason = params.get("error_description") or params["error"]
            return problem(request, f"Auth refused the sign-in: {reason}")
        if not params.get("code"):
            return problem(request, "Auth sent no authorization code.")
        exchange = token_request(
            params["code"],
            redirect_uri,
            started["verifier"],
            client_id=service,
            client_secret=first_party_client_secret(settings, service),
        )
        try:
            async with httpx.AsyncClient(timeout=10) as http:
                token = token_response(await http.post(f"{auth_url}/oauth/token", **exchange))
        except TokenRefused as error:
            return problem(request, f"Auth refused the sign-in: {error}")
        except httpx.HTTPError as error:
            log.warning("login.auth_unreachable", service=service, error=str(error))
            return problem(request, "The sign-in service cannot be reached.", 502)
        try:
            principal = await runtime.verifier.verify(token["access_token"])
        except (InvalidToken, KeyError) as error:
            log.warning("login.token_rejected", service=service, error=str(error))
            return problem(request, "The sign-in could not be verified.", 502)
        # a new session at sign-in, recorded on the server: nothing carried over
        await sessions.start(request, runtime, str(principal.public_id))
        request.session[SESSION_KEY] = principal_to_session(principal)
        if token.get("id_token"):
            request.session[ID_TOKEN_KEY] = token["id_token"]
        return RedirectResponse(safe_next(started.get("next")), status_code=303)

    @router.get("/oauth/frontchannel-logout")
    async def frontchannel_logout(request: Request, iss: str = "") -> Response:
        """Auth, signing someone out, loads this in a hidden iframe (OpenID Connect
        Front-Channel Logout): the session here ends too. The cookie is SameSite=Lax, so
        only a same-site page (auth) can end it this way."""
        if iss and iss != settings.issuer:
            return HTMLResponse("wrong issuer", status_code=400)
        await sessions.end(request, runtime)
        return HTMLResponse(
            "<!doctype html><title>Signed out</title>",
            headers={
                "Cache-Control": "no-store",
                # framed by auth's "signed out" page, and by nothing else
                "Content-Security-Policy": (
                    f"default-src 'none'; frame-ancestors {origin(settings.issuer)}"
                ),
            },
        )

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        id_token = request.session.get(ID_TOKEN_KEY)
        await sessions.end(request, runtime)  # on the server too: copies of the cookie die
        params = {"client_id": service, "post_logout_redirect_uri": home}
        if isinstance(id_token, str):
            params["id_token_hint"] = id_token
        return RedirectResponse(f"{auth_url}/oauth/end-session?{urlencode(params)}", 303)

    app.include_router(router)

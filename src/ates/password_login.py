"""Getting a token for scripts: the PKCE flow of the public ``ates-cli`` client, with the
login form filled in from a username and password (``ates token``).

It plays the browser's part over HTTP against the running auth service: discovery,
authorize, the login form (with its CSRF token), the redirect to the loopback callback
(read from the ``Location`` header; nothing needs to listen there), and the code exchange
with the PKCE verifier. The OAuth messages are built by Authlib's helpers
(``ates.platform.login``).
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx
from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc6749.parameters import parse_authorization_code_response

from ates.platform.login import (
    TokenRefused,
    authorization_request,
    token_request,
    token_response,
)
from ates.platform.tcp import free_port

CLIENT_ID = "ates-cli"
MAX_HOPS = 8


class LoginFailed(Exception):
    pass


class LoginForm(HTMLParser):
    """The hidden fields (CSRF token, next) and the error message of auth's login page."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self.errors: list[str] = []
        self._in_alert = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "input" and values.get("type") == "hidden" and values.get("name"):
            self.fields[str(values["name"])] = values.get("value") or ""
        if values.get("role") == "alert":
            self._in_alert = True

    def handle_endtag(self, tag: str) -> None:
        self._in_alert = False

    def handle_data(self, data: str) -> None:
        if self._in_alert and data.strip():
            self.errors.append(data.strip())


def _parse(html: str) -> LoginForm:
    form = LoginForm()
    form.feed(html)
    return form


def password_login(
    auth_url: str, username: str, password: str, *, scope: str = "openid profile"
) -> dict[str, Any]:
    """The token response (``access_token``, ``refresh_token``, ``id_token``…)."""
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
    with httpx.Client(timeout=10, follow_redirects=False) as browser:
        try:
            meta = browser.get(f"{auth_url}/.well-known/openid-configuration")
            meta.raise_for_status()
        except httpx.HTTPError as error:
            raise LoginFailed(f"cannot reach auth at {auth_url}: {error}") from error
        endpoints = meta.json()
        started = authorization_request(
            endpoints["authorization_endpoint"], CLIENT_ID, redirect_uri, scope
        )
        callback = _sign_in(browser, started.url, redirect_uri, username, password)
        answer = dict(parse_qsl(urlsplit(callback).query))
        if "error" in answer:
            reason = answer.get("error_description") or answer["error"]
            raise LoginFailed(f"auth refused the sign-in: {reason}")
        try:
            code = parse_authorization_code_response(callback, state=started.state)["code"]
        except OAuth2Error as error:
            raise LoginFailed(
                f"auth refused the sign-in: {error.description or error.error}"
            ) from error
        exchange = token_request(
            code, redirect_uri, started.verifier, client_id=CLIENT_ID, client_secret=None
        )
        try:
            return token_response(browser.post(endpoints["token_endpoint"], **exchange))
        except TokenRefused as error:
            raise LoginFailed(f"auth refused the code: {error}") from error


def _sign_in(
    browser: httpx.Client, url: str, redirect_uri: str, username: str, password: str
) -> str:
    """Follow auth's redirects and fill in its login form; return the callback URL."""
    response = browser.get(url)
    for _ in range(MAX_HOPS):
        if response.is_redirect:
            location = urljoin(str(response.url), response.headers["location"])
            if location.startswith(redirect_uri):
                return location
            if urlsplit(location).path == "/password":
                raise LoginFailed(
                    "this is a one-time password: sign in once on auth's sign-in page to "
                    "choose your own, then use that"
                )
            response = browser.get(location)
            continue
        page = _parse(response.text)
        if response.status_code in (200, 401) and "csrf_token" in page.fields:
            if page.errors and response.request.method == "POST":
                raise LoginFailed(page.errors[0])
            response = browser.post(
                str(response.url),
                data={**page.fields, "username": username, "password": password},
            )
            continue
        reason = page.errors[0] if page.errors else f"HTTP {response.status_code}"
        raise LoginFailed(reason)
    raise LoginFailed("too many redirects while signing in")

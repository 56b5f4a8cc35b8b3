"""Security headers on every response of every service (OWASP's secure-headers set).

The Content-Security-Policy allows what the pages use and nothing more: our own
stylesheet, no script at all, no inline style; forms post to this service, and a sign-in
or sign-out hops on to another aTES service (Chrome holds ``form-action`` to the
redirects that follow a post); auth's "signed out" page frames the dashboards'
front-channel logout URLs. No page may be framed, except a dashboard's front-channel
logout by auth: that route sets its own policy, which is left as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL, as browsers write the Origin header."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(service_origins: Iterable[str]) -> str:
    others = " ".join(sorted(set(service_origins)))
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'none'",
            "style-src 'self'",
            "img-src 'self' data:",
            "object-src 'none'",
            "base-uri 'none'",
            f"form-action 'self' {others}",
            f"frame-src 'self' {others}",
            "frame-ancestors 'none'",
        ]
    )


class SecurityHeaders:
    """Pure ASGI middleware: adds the headers to every HTTP response that lacks them."""

    def __init__(self, app: ASGIApp, *, service_origins: Iterable[str]) -> None:
        self.app = app
        self.defaults = {
            "X-Content-Type-Options": "nosniff",
            # same-origin, not no-referrer: with no-referrer a browser sends "Origin: null"
            # on form posts, which the pages' cross-site check refuses
            "Referrer-Policy": "same-origin",
        }
        self.framing = {
            "X-Frame-Options": "DENY",
            "Content-Security-Policy": content_security_policy(service_origins),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.defaults.items():
                    headers.setdefault(name, value)
                if "content-security-policy" not in headers:
                    headers.update(self.framing)
            await send(message)

        await self.app(scope, receive, send_with_headers)

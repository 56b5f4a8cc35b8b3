"""What every service does on every request, as plain ASGI middleware: metrics and the
incoming trace context, and the same-origin check of page forms.

Written against ASGI rather than with ``@app.middleware("http")``: Starlette's
``BaseHTTPMiddleware`` runs the rest of the app in a task of its own and streams the
response through memory channels, which a profile of the tasks service under load put at
about a sixth of its CPU for these two small checks.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ates.platform.headers import origin
from ates.platform.telemetry import HTTP_REQUESTS
from ates.platform.tracing import TRACEPARENT, valid_traceparent

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class RequestMetrics:
    """``ates_http_request_seconds`` by method, route template and status; and the
    request's ``traceparent`` header, when it has a valid one, as the trace of the work
    it causes (:data:`ates.platform.tracing.TRACEPARENT`). With tracing on, the
    OpenTelemetry middleware outside this one has made it the parent of the request's
    span already; with tracing off this is all the propagation there is, and it costs a
    scan of the header list."""

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service
        self._children: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # if the app raises before answering
        token = None
        for name, value in scope["headers"]:
            if name == b"traceparent":
                traceparent = valid_traceparent(value.decode("latin-1"))
                if traceparent is not None:
                    token = TRACEPARENT.set(traceparent)
                break

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            if token is not None:
                TRACEPARENT.reset(token)
            key = (scope["method"], getattr(scope.get("route"), "path", "unmatched"), status)
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = HTTP_REQUESTS.labels(
                    self.service, key[0], key[1], str(status)
                )
            child.observe(time.perf_counter() - started)


class SameOriginForms:
    """Page forms (Done, Shuffle, close a day, people) act with the session cookie.
    SameSite=Lax keeps it off cross-site POSTs in current browsers; checking the Origin a
    browser sends with every POST also stops them in older ones (OWASP's "verify the
    origin"). The JSON API takes bearer tokens, not cookies: no CSRF there."""

    def __init__(self, app: ASGIApp, *, trusted_origins: Iterable[str]) -> None:
        self.app = app
        self.trusted = frozenset(trusted_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] not in SAFE_METHODS
            and not scope["path"].startswith("/api/")
        ):
            sent = Headers(scope=scope).get("origin")
            if sent is not None and sent not in self.trusted and sent != _own_origin(scope):
                refused = JSONResponse(
                    status_code=403, content={"detail": "cross-site form submission refused"}
                )
                await refused(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _own_origin(scope: Scope) -> str:
    """The origin this request was addressed to (as ``request.base_url`` gives it)."""
    headers = Headers(scope=scope)
    host = headers.get("host")
    if host is None:
        server = scope.get("server") or ("localhost", 80)
        host = f"{server[0]}:{server[1]}"
    return origin(f"{scope.get('scheme', 'http')}://{host}/")

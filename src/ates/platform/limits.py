"""Request bodies are capped: FastAPI's ``max_body_size`` (set in ``create_app``) counts
the bytes as they arrive and refuses a body over the cap with 413 before it is parsed.

This middleware only answers the common case earlier and in the API's own format: a
JSON body whose ``Content-Length`` already says it is too big gets ``{"detail": …}`` at
once (Starlette's own answer to a declared length is plain text).
"""

from __future__ import annotations

import json

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

JSON_BODY_MAX = 64 * 1024


def too_large(limit: int) -> str:
    return f"body: at most {limit} bytes"


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


class DeclaredJsonLimit:
    def __init__(self, app: ASGIApp, *, limit: int = JSON_BODY_MAX) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            declared = headers.get("content-length", "")
            if (
                declared.isdigit()
                and int(declared) > self.limit
                and _is_json(headers.get("content-type", ""))
            ):
                body = json.dumps({"detail": too_large(self.limit)}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 413,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

"""Running Authlib's synchronous provider from async request handlers.

Authlib's server classes are synchronous (its maintainers do not support async
providers). Each OAuth request therefore runs Authlib in a worker thread, inside one
unit of work opened by the request. Authlib's storage hooks, called in that thread,
hand their database work back to the event loop with :meth:`Call.run` and wait for it,
so all of a request's reads and writes share one transaction: an authorization code
cannot be redeemed twice, and a replay's revocation is committed with the refusal.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import defaultdict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request
from fastapi import Request
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import Headers

T = TypeVar("T")

STORAGE_TIMEOUT_SECONDS = 30


@dataclass
class Call:
    """What Authlib's hooks may use during one OAuth request."""

    loop: asyncio.AbstractEventLoop
    session: AsyncSession
    now: datetime
    signing_key: RSAKey
    public_keys: KeySet
    auth_time: datetime | None = None  # when the person signed in (authorize requests)
    ended_session: bool = False  # set by the end-session endpoint

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run database work on the event loop and wait for it (from the worker thread)."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(STORAGE_TIMEOUT_SECONDS)


_current: contextvars.ContextVar[Call] = contextvars.ContextVar("ates_oauth_call")


def current() -> Call:
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError("an Authlib hook ran outside an OAuth request") from None


async def in_worker(call: Call, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn`` (an Authlib server method) in a worker thread that sees ``call``."""
    token = _current.set(call)
    try:
        # to_thread copies the context, so the thread sees ``call`` through ``current()``
        return await asyncio.to_thread(fn, *args)
    finally:
        _current.reset(token)


class _Payload(OAuth2Payload):
    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in items:
            self._datalist[key].append(value)
        self._data = {key: values[0] for key, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class StarletteOAuth2Request(OAuth2Request):
    """An Authlib request built from a Starlette request whose body was already read.

    The authorization endpoint reads its parameters from the query string, the token
    endpoint from the form body only (RFC 6749 §3.2: no secrets in URLs)."""

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Headers,
        query: list[tuple[str, str]],
        form: list[tuple[str, str]],
        *,
        payload_from: str,
    ) -> None:
        super().__init__(method, uri, headers=headers)
        self._args = dict(query)
        self._form = dict(form)
        items = {"query": query, "form": form, "both": query + form}[payload_from]
        self.payload = _Payload(items)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


async def oauth_request(request: Request, *, payload_from: str) -> StarletteOAuth2Request:
    form: list[tuple[str, str]] = []
    if request.method == "POST":
        data = await request.form()
        form = [(k, v) for k, v in data.multi_items() if isinstance(v, str)]
    return StarletteOAuth2Request(
        request.method,
        str(request.url),
        request.headers,
        list(request.query_params.multi_items()),
        form,
        payload_from=payload_from,
    )

"""The load generator's HTTP: one keep-alive pool, the least CPU per request.

The benchmark shares the machine with the system it measures, so its own CPU counts.
Measured here (2-core Xeon, 3,000 POSTs with a bearer token and a JSON answer, 16 in
flight, against a trivial uvicorn app): aiohttp 3.14 spends 0.33 ms of CPU per request,
httpx 0.28 spends 2.2 ms (its pure-Python h11/anyio/httpcore stack; the same server
then answered 1,240 and 240 requests/s). aiohttp is used when installed; httpx, a
dependency of aTES anyway, otherwise (the JSON says which). Sign-in, which needs
redirects and a cookie jar and runs once per person, always uses httpx.
"""

from __future__ import annotations

import contextlib
import functools
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, Protocol

import httpx


class HttpFailed(Exception):
    """No answer (connection refused, reset, timed out)."""


@dataclass(frozen=True, slots=True)
class Answer:
    status_code: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


class Http(Protocol):
    name: str

    async def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        data: dict[str, str] | None = None,
    ) -> Answer: ...


@functools.cache
def tls() -> ssl.SSLContext:
    """One TLS context for every client (building one loads the CA bundle: ~40 ms)."""
    return ssl.create_default_context()


class _Aiohttp:
    def __init__(self, session: Any) -> None:
        import aiohttp

        self.session = session
        self.errors = (aiohttp.ClientError, TimeoutError)
        self.name = f"aiohttp {aiohttp.__version__}"

    async def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        data: dict[str, str] | None = None,
    ) -> Answer:
        try:
            async with self.session.request(
                method, url, headers=headers, json=json, params=params, data=data
            ) as response:
                return Answer(response.status, await response.read())
        except self.errors as error:
            raise HttpFailed(repr(error)) from error


class _Httpx:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.name = f"httpx {httpx.__version__} (aiohttp is not installed: ~6x the CPU)"

    async def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        data: dict[str, str] | None = None,
    ) -> Answer:
        try:
            response = await self.client.request(
                method, url, headers=headers, json=json, params=params, data=data
            )
        except httpx.HTTPError as error:
            raise HttpFailed(repr(error)) from error
        return Answer(response.status_code, response.content)


@contextlib.asynccontextmanager
async def pool(max_connections: int) -> AsyncIterator[Http]:
    """A keep-alive pool of at most ``max_connections``, no cookie jar (the API takes
    bearer tokens), no timeout on waiting for a free connection (an open-loop phase may
    queue more requests than there are connections)."""
    try:
        import aiohttp
    except ImportError:
        limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=2.0,  # before uvicorn's 5 s, as below
        )
        no_cookies = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
        async with httpx.AsyncClient(
            limits=limits,
            timeout=httpx.Timeout(120.0, pool=None),
            cookies=no_cookies,
            verify=tls(),
        ) as client:
            yield _Httpx(client)
        return
    # An idle connection is dropped before uvicorn's keep-alive timeout (5 s) would close
    # it under a request being sent (ServerDisconnectedError; aiohttp keeps them 15 s).
    connector = aiohttp.TCPConnector(
        limit=max_connections, limit_per_host=0, ssl=tls(), keepalive_timeout=2.0
    )
    async with aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120),
    ) as session:
        yield _Aiohttp(session)


def browser() -> httpx.AsyncClient:
    """A client with a cookie jar of its own, for one sign-in."""
    return httpx.AsyncClient(timeout=60, verify=tls())

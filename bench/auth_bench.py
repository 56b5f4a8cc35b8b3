"""Benchmark of the auth service and of token verification.

    .venv/bin/python bench/auth_bench.py [--flows 200] [--concurrency 8]

1. Verification: what every API call of every service pays, ``TokenVerifier.verify`` of
   an RS256 access token against cached keys (in-process, no I/O).
2. Password check: one argon2id verification with the service's parameters.
3. Auth as its own process (uvicorn on a free port, SQLite file with WAL and full fsync,
   no broker), driven over HTTP by httpx:
   - full sign-ins: authorize → login form → password → code → token exchange (PKCE);
   - single sign-on: authorize with auth's session already open → code → token, what a
     second dashboard costs;
   - refresh-token rotation;
   and the peak RSS (``VmHWM``) of the auth process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from ates.clitools import service_runtime
from ates.config import Settings
from ates.platform.login import authorization_request
from ates.platform.security import API_AUDIENCE, StaticJwks, TokenVerifier
from ates.platform.tcp import free_port
from ates.services.auth.commands import CreatePerson, create_person
from ates.services.auth.passwords import hash_password, verify_password

PASSWORD = "benchmark password"
REDIRECT = "http://127.0.0.1:53682/callback"
SERVER = """
import asyncio, sys, uvicorn
from ates.config import Settings
from ates.platform.runtime import build_runtime
from ates.platform.service import create_app
from ates.services.registry import spec
settings = Settings(data_dir=sys.argv[1], auth_url=f"http://127.0.0.1:{sys.argv[2]}")
app = create_app(spec("auth"), settings, messaging=False)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
"""


def report(name: str, seconds: list[float], wall: float) -> None:
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[min(len(ms) - 1, int(len(ms) * 0.95))]
    print(
        f"{name}: {len(ms) / wall:.1f}/s over {len(ms)} "
        f"(p50 {statistics.median(ms):.1f} ms, p95 {p95:.1f} ms)"
    )


async def verification(count: int) -> None:
    key = RSAKey.generate_key(2048, parameters={"kid": "bench"})
    public = KeySet.import_key_set(KeySet([key]).as_dict(private=False))
    verifier = TokenVerifier(StaticJwks(public), issuer="http://auth")
    now = int(time.time())
    claims = {
        "iss": "http://auth",
        "aud": API_AUDIENCE,
        "sub": str(uuid.uuid4()),
        "role": "worker",
        "preferred_username": "bench",
        "iat": now,
        "exp": now + 3600,
    }
    token = jwt.encode({"alg": "RS256", "kid": "bench"}, claims, key)
    await verifier.verify(token)
    started = time.perf_counter()
    for _ in range(count):
        await verifier.verify(token)
    per = (time.perf_counter() - started) / count
    print(f"verify an RS256 access token: {per * 1e6:.0f} µs ({1 / per:,.0f}/s on one core)")


def password_check(count: int) -> None:
    stored = hash_password(PASSWORD)
    started = time.perf_counter()
    for _ in range(count):
        verify_password(stored, PASSWORD)
    per = (time.perf_counter() - started) / count
    print(f"argon2id password check: {per * 1000:.1f} ms of CPU per sign-in")


async def follow(client: httpx.AsyncClient, response: httpx.Response) -> httpx.Response | str:
    for _ in range(10):
        if not response.is_redirect:
            return response
        location = urljoin(str(response.url), response.headers["location"])
        if location.startswith(REDIRECT):
            return location
        response = await client.get(location)
    raise RuntimeError("too many redirects")


async def sign_in(client: httpx.AsyncClient, url: str, username: str) -> dict[str, str]:
    started = authorization_request(f"{url}/oauth/authorize", "ates-cli", REDIRECT, "openid")
    answer = await follow(client, await client.get(started.url))
    if not isinstance(answer, str):
        fields = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', answer.text))
        fields = {k: unescape(v) for k, v in fields.items()}
        posted = await client.post(
            str(answer.url), data={**fields, "username": username, "password": PASSWORD}
        )
        answer = await follow(client, posted)
    assert isinstance(answer, str), "sign-in failed"
    code = parse_qs(urlsplit(answer).query)["code"][0]
    token = await client.post(
        f"{url}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": started.verifier,
            "client_id": "ates-cli",
        },
    )
    token.raise_for_status()
    result: dict[str, str] = token.json()
    return result


async def timed(
    count: int, concurrency: int, one: Callable[[int], Awaitable[None]]
) -> tuple[list[float], float]:
    """Run ``one(worker)`` ``count`` times, ``concurrency`` workers at once (each worker
    has its own client and person, so their cookies never mix)."""
    times: list[float] = []
    queue = iter(range(count))

    async def worker(index: int) -> None:
        for _ in queue:
            started = time.perf_counter()
            await one(index)
            times.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return times, time.perf_counter() - started


async def over_http(flows: int, concurrency: int) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="ates-auth-bench-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(data_dir=data_dir, auth_url=url)
    async with service_runtime("auth", settings) as runtime:
        for i in range(concurrency):
            async with runtime.uow() as uow:
                await create_person(
                    uow, CreatePerson(username=f"bench{i}", role="worker", password=PASSWORD)
                )
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-c", SERVER, str(data_dir), str(port)
    )
    try:
        async with httpx.AsyncClient(timeout=30) as probe:
            for _ in range(300):
                try:
                    if (await probe.get(f"{url}/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
        clients = [httpx.AsyncClient(timeout=30) for _ in range(concurrency)]
        refresh_tokens: dict[int, str] = {}

        async def full(w: int) -> None:
            clients[w].cookies.clear()
            token = await sign_in(clients[w], url, f"bench{w}")
            refresh_tokens[w] = token["refresh_token"]

        async def sso(w: int) -> None:
            await sign_in(clients[w], url, f"bench{w}")

        async def rotate(w: int) -> None:
            answer = await clients[w].post(
                f"{url}/oauth/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": refresh_tokens[w],
                    "client_id": "ates-cli",
                },
            )
            answer.raise_for_status()
            refresh_tokens[w] = answer.json()["refresh_token"]

        report(
            "full sign-in (form + password + code + token)", *await timed(flows, concurrency, full)
        )
        report("single sign-on (session open: code + token)", *await timed(flows, concurrency, sso))
        report("refresh-token rotation", *await timed(flows, concurrency, rotate))
        for client in clients:
            await client.aclose()
        print(f"auth process peak RSS: {peak_rss_mb(server.pid):.0f} MB")
    finally:
        server.send_signal(signal.SIGTERM)
        await asyncio.wait_for(server.wait(), 30)


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    peak = next(line for line in status.splitlines() if line.startswith("VmHWM"))
    return int(peak.split()[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--flows", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    for name in [n for n in os.environ if n.startswith("ATES_")]:
        del os.environ[name]
    asyncio.run(verification(5000))
    password_check(20)
    asyncio.run(over_http(args.flows, args.concurrency))


if __name__ == "__main__":
    main()

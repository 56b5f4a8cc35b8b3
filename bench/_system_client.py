"""The public HTTP API as ``bench/system.py`` calls it (DESIGN.md §4).

Sign-in is what ``ates token`` does, written here against the public contract only: the
``ates-cli`` client's authorization code flow with PKCE (S256), the login form filled in,
the code taken from the loopback redirect's ``Location`` (nothing listens there) and
exchanged for tokens. The OAuth messages are built with Authlib's helpers. Each person is
signed in once; a token near its end is renewed with its refresh token, so a run longer
than a token's lifetime never signs anyone in again.

Requests go through one keep-alive pool (``bench/_system_http.py``) and are spread
round-robin over a service's processes when it has several, as a load balancer in front
of them would.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx
from _system_http import Answer, Http, HttpFailed, browser
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from ates.password_login import LoginForm

CLIENT_ID = "ates-cli"
REDIRECT_URI = "http://127.0.0.1:9/callback"  # loopback, any port: read from Location only
SCOPE = "openid profile"
RENEW_MARGIN_SECONDS = 60.0


class BenchError(Exception):
    """The system did something a user would call a failure; the run stops with it."""


@dataclass(frozen=True)
class Login:
    username: str
    role: str
    password: str


@dataclass
class Person:
    """A signed-in person: their public id and bearer token."""

    login: Login
    public_id: str
    access_token: str
    refresh_token: str | None
    renew_at: float  # time.monotonic() after which the token is renewed first
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    @property
    def username(self) -> str:
        return self.login.username


class Api:
    """The system's public API, called as one signed-in person or another."""

    def __init__(self, urls: Mapping[str, Sequence[str]], http: Http) -> None:
        self.urls = {service: [u.rstrip("/") for u in found] for service, found in urls.items()}
        self.http = http
        self._next: dict[str, Iterator[str]] = {s: itertools.cycle(u) for s, u in self.urls.items()}
        self._endpoints: dict[str, str] = {}

    def url(self, service: str) -> str:
        return next(self._next[service])

    # --- signing in ---------------------------------------------------------------------

    async def _discover(self) -> dict[str, str]:
        if not self._endpoints:
            auth = self.urls["auth"][0]
            try:
                meta = await self.http.request(
                    "GET", f"{auth}/.well-known/openid-configuration", {}
                )
            except HttpFailed as error:
                raise BenchError(f"cannot reach auth at {auth}: {error}") from error
            if meta.status_code != 200:
                raise BenchError(f"auth at {auth} has no OpenID configuration: {meta.text}")
            self._endpoints = {k: str(v) for k, v in meta.json().items() if isinstance(v, str)}
        return self._endpoints

    async def sign_in(self, login: Login) -> Person:
        """The PKCE flow with the login form filled in, in a browser of its own (a cookie
        jar for auth's session, thrown away after)."""
        endpoints = await self._discover()
        verifier, state = generate_token(64), generate_token(32)
        url = prepare_grant_uri(
            endpoints["authorization_endpoint"],
            client_id=CLIENT_ID,
            response_type="code",
            redirect_uri=REDIRECT_URI,
            scope=SCOPE,
            state=state,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
        )
        async with browser() as client:
            callback = await self._fill_in_login(client, url, login)
            answer = dict(parse_qsl(urlsplit(callback).query))
            if answer.get("state") != state or "code" not in answer:
                reason = answer.get("error_description") or answer.get("error") or callback
                raise BenchError(f"auth refused the sign-in of {login.username}: {reason}")
            tokens = await client.post(
                endpoints["token_endpoint"],
                data={
                    "grant_type": "authorization_code",
                    "code": answer["code"],
                    "redirect_uri": REDIRECT_URI,
                    "code_verifier": verifier,
                    "client_id": CLIENT_ID,
                },
            )
        if tokens.status_code != 200:
            raise BenchError(f"auth refused the code of {login.username}: {tokens.text}")
        person = Person(login, "", "", None, 0.0)
        self._take(person, tokens.json())
        me = await self.json(person, "GET", "auth", "/api/me")
        person.public_id = str(me["public_id"])
        return person

    async def _fill_in_login(self, browser: httpx.AsyncClient, url: str, login: Login) -> str:
        """Follow auth's redirects and answer its login form; the callback URL."""
        response = await browser.get(url)
        for _ in range(8):
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                if location.startswith(REDIRECT_URI):
                    return location
                response = await browser.get(location)
                continue
            form = LoginForm()
            form.feed(response.text)
            if "csrf_token" in form.fields and not (
                form.errors and response.request.method == "POST"
            ):
                response = await browser.post(
                    str(response.url),
                    data={**form.fields, "username": login.username, "password": login.password},
                )
                continue
            reason = form.errors[0] if form.errors else f"HTTP {response.status_code}"
            raise BenchError(f"cannot sign in as {login.username}: {reason}")
        raise BenchError(f"too many redirects while signing in as {login.username}")

    def _take(self, person: Person, tokens: dict[str, Any]) -> None:
        person.access_token = str(tokens["access_token"])
        person.refresh_token = tokens.get("refresh_token") or person.refresh_token
        lifetime = float(tokens.get("expires_in") or 300)
        person.renew_at = time.monotonic() + max(lifetime - RENEW_MARGIN_SECONDS, lifetime / 2)

    async def _renew(self, person: Person) -> None:
        async with person.lock:
            if time.monotonic() < person.renew_at:
                return  # another request renewed it meanwhile
            endpoints = await self._discover()
            answer = None
            if person.refresh_token:
                answer = await self.http.request(
                    "POST",
                    endpoints["token_endpoint"],
                    {},
                    data={
                        "grant_type": "refresh_token",
                        "refresh_token": person.refresh_token,
                        "client_id": CLIENT_ID,
                    },
                )
            if answer is not None and answer.status_code == 200:
                self._take(person, answer.json())
            else:
                renewed = await self.sign_in(person.login)
                person.access_token, person.refresh_token = (
                    renewed.access_token,
                    renewed.refresh_token,
                )
                person.renew_at = renewed.renew_at

    # --- requests -----------------------------------------------------------------------

    async def call(
        self,
        person: Person,
        method: str,
        service: str,
        path: str,
        *,
        expect: Iterable[int] = (200,),
        **kw: Any,
    ) -> Answer:
        """One request as ``person``; an answer not in ``expect`` stops the run with the
        service's own explanation."""
        if time.monotonic() >= person.renew_at:
            await self._renew(person)
        url = self.url(service) + path
        headers = {"Authorization": f"Bearer {person.access_token}"}
        try:
            response = await self.http.request(method, url, headers, **kw)
        except HttpFailed as error:
            raise BenchError(f"{method} {url} as {person.username}: {error}") from error
        if response.status_code not in set(expect):
            raise BenchError(
                f"{method} {url} as {person.username}: HTTP {response.status_code}: "
                f"{response.text[:500]}"
            )
        return response

    async def json(self, person: Person, method: str, service: str, path: str, **kw: Any) -> Any:
        return (await self.call(person, method, service, path, **kw)).json()


async def sign_in_all(api: Api, logins: Sequence[Login], at_once: int = 4) -> list[Person]:
    """Sign everyone in, a few at a time (each sign-in costs auth an argon2 check)."""
    gate = asyncio.Semaphore(at_once)

    async def one(login: Login) -> Person:
        async with gate:
            return await api.sign_in(login)

    return list(await asyncio.gather(*(one(login) for login in logins)))


# --- the people of a run ------------------------------------------------------------------


@dataclass
class Crew:
    """Who works in a run: the admin, the manager who creates tasks, the workers."""

    admin: Person
    manager: Person
    workers: dict[str, Person]  # by public id
    created: list[Person]  # people this run made (deactivated after, on a shared system)

    def assignee(self, public_id: str) -> Person:
        try:
            return self.workers[public_id]
        except KeyError as error:
            raise BenchError(
                f"a task went to worker {public_id}, whom the benchmark cannot sign in as "
                "(a worker created meanwhile by someone else?)"
            ) from error


async def gather_crew(
    api: Api,
    admin: Login,
    manager: Login | None,
    known: Sequence[Login],
    wanted: int,
    prefix: str,
) -> Crew:
    """Sign in the admin and the manager (made through ``POST /api/users`` if none is
    given); make the pool of active workers ``wanted`` large by creating workers the same
    way; sign every worker in.

    Every active worker must be one the benchmark can sign in as, or the tasks landing on
    them could not be completed: a worker whose password is unknown stops the run."""
    (boss,) = await sign_in_all(api, [admin])
    made: list[Login] = []
    if manager is None:
        manager = Login(f"{prefix}-manager", "manager", generate_token(20))
        made.append(manager)
    people = await api.json(boss, "GET", "auth", "/api/users")
    active = {p["username"] for p in people if p["role"] == "worker" and p["active"]}
    by_name = {login.username: login for login in known}
    strangers = sorted(active - set(by_name))
    if strangers:
        raise BenchError(
            f"{len(strangers)} active workers the benchmark has no password for "
            f"({', '.join(strangers[:5])}…): tasks would land on them. Give their logins "
            "with --logins FILE or deactivate them."
        )
    pool = [by_name[name] for name in sorted(active)]
    fresh = [
        Login(f"{prefix}-w{i:03d}", "worker", generate_token(20))
        for i in range(max(0, wanted - len(pool)))
    ]
    for login in [*made, *fresh]:
        await api.call(
            boss,
            "POST",
            "auth",
            "/api/users",
            expect=(201,),
            json={
                "username": login.username,
                "role": login.role,
                "password": login.password,
                "full_name": f"Bench {login.role} {login.username}",
            },
        )
    chief, *signed = await sign_in_all(api, [manager, *pool, *fresh])
    created = [p for p in [chief, *signed] if p.login in made or p.login in fresh]
    return Crew(boss, chief, {p.public_id: p for p in signed}, created)


async def retire(api: Api, crew: Crew) -> None:
    """Deactivate the people this run created (on a system that outlives the run, so
    that the next run's tasks do not land on workers nobody can sign in as)."""
    for person in crew.created:
        await api.call(
            crew.admin, "PATCH", "auth", f"/api/users/{person.public_id}", json={"active": False}
        )


async def wait_until_known(api: Api, crew: Crew, timeout: float) -> None:
    """Until billing has opened an account for every worker: their ``AccountCreated`` has
    gone through the broker (tasks reads the same event; there is no public way to ask
    tasks whom it knows, and a worker it has not heard of only gets no tasks yet)."""
    pending = set(crew.workers)
    deadline = time.monotonic() + timeout
    while pending:
        for public_id in sorted(pending):
            found = await api.call(
                crew.admin, "GET", "billing", f"/api/accounts/{public_id}", expect=(200, 404)
            )
            if found.status_code == 200:
                pending.discard(public_id)
        if not pending:
            return
        if time.monotonic() > deadline:
            raise BenchError(
                f"billing has not opened the accounts of {len(pending)} workers after "
                f"{timeout:.0f}s: is the pipeline running?"
            )
        await asyncio.sleep(0.25)

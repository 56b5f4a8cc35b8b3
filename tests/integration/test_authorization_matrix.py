"""The authorization matrix: every ``/api/*`` route of every service, found by walking the
service's real app (``create_app``), against the table of who may call it.

For each route: no token → 401; a forged, expired, wrong-audience, wrong-issuer or
``alg: none`` token → 401; each role not in its entry → 403; each role in it → 2xx. A route
without an entry fails (so does an entry without a route): the matrix grows with the
services and never skips anything silently.

Each service has its own table below, with a ``setup`` that creates what the calls need
(the people the tokens speak for, a task to complete…). Tokens are signed by the test key
(``tests.support.TokenFactory``); the "sub" of a role's token is ``ctx.people[role]``.
"""

from __future__ import annotations

import base64
import itertools
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from joserfc.jwk import RSAKey

from ates.config import SERVICES
from ates.platform.events import Event
from ates.platform.security import API_AUDIENCE, ROLES
from ates.platform.service import create_app
from ates.services.auth.models import Person
from ates.services.auth.passwords import hash_password
from ates.services.billing import ledger
from ates.services.registry import spec
from ates.services.tasks.commands import CreateTask, create_task
from tests.support import ISSUER, Harness, TokenFactory, make_settings, service_harness

pytestmark = pytest.mark.integration

EVERYONE = frozenset(ROLES)


@dataclass
class Ctx:
    """What a service's setup made, for building paths and bodies."""

    people: dict[str, str]  # role -> public_id of a person with that role
    data: dict[str, Any] = field(default_factory=dict)
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    def unique(self, prefix: str) -> str:
        return f"{prefix}{next(self._counter)}"


@dataclass(frozen=True)
class Case:
    """Who may call a route, and how to call it so that the right role gets a 2xx."""

    roles: frozenset[str]
    path: Callable[[Ctx], dict[str, str]] = lambda ctx: {}
    body: Callable[[Ctx], Any] | None = None
    query: Callable[[Ctx], dict[str, str]] = lambda ctx: {}


Setup = Callable[[Harness, Ctx], Awaitable[None]]


@dataclass(frozen=True)
class Table:
    routes: dict[tuple[str, str], Case]
    setup: Setup | None = None


ADMINS = frozenset({"admin"})
# every service: its status for operators (ates status, the status page)
OPERATIONS = {("GET", "/api/admin/status"): Case(ADMINS)}


# --- auth --------------------------------------------------------------------------------


async def _auth_people(harness: Harness, ctx: Ctx) -> None:
    # Auth looks every token's person up (deactivated → 401), so they must exist.
    password_hash = hash_password("matrix password")
    async with harness.runtime.uow() as uow:
        for role, public_id in ctx.people.items():
            uow.session.add(
                Person(
                    public_id=public_id,
                    username=f"matrix-{role}",
                    email=f"{role}@matrix.test",
                    full_name=f"Matrix {role.title()}",
                    role=role,
                    active=True,
                    password_hash=password_hash,
                )
            )
        await uow.commit()


AUTH = Table(
    setup=_auth_people,
    routes={
        **OPERATIONS,
        ("POST", "/api/users"): Case(
            frozenset({"admin"}),
            body=lambda ctx: {
                "username": ctx.unique("newcomer"),
                "role": "worker",
                "password": "long enough password",
            },
        ),
        ("GET", "/api/users"): Case(frozenset({"admin"})),
        ("GET", "/api/users/{public_id}"): Case(
            frozenset({"admin"}), path=lambda ctx: {"public_id": ctx.people["worker"]}
        ),
        ("PATCH", "/api/users/{public_id}"): Case(
            frozenset({"admin"}),
            path=lambda ctx: {"public_id": ctx.people["worker"]},
            body=lambda ctx: {"full_name": ctx.unique("Renamed Worker ")},
        ),
        ("GET", "/api/me"): Case(EVERYONE),
    },
)

# --- tasks -------------------------------------------------------------------------------


async def _announce_people(harness: Harness, ctx: Ctx) -> None:
    """Tell the service about the matrix people the way auth does: AccountCreated events,
    applied through the service's own consumer (inbox and handlers)."""
    consumer = harness.runtime.consumer()
    for role, public_id in ctx.people.items():
        await consumer.apply(
            Event(
                event_name="AccountCreated",
                event_version=1,
                producer="auth",
                data={
                    "public_id": public_id,
                    "username": f"matrix-{role}",
                    "email": f"{role}@matrix.test",
                    "full_name": f"Matrix {role.title()}",
                    "role": role,
                },
            )
        )


async def _tasks_setup(harness: Harness, ctx: Ctx) -> None:
    await _announce_people(harness, ctx)
    async with harness.runtime.uow() as uow:
        # the worker is the only active worker, so the task is theirs to complete
        task = await create_task(uow, CreateTask(title="Matrix task"))
    ctx.data["task"] = task.public_id


TASKS = Table(
    setup=_tasks_setup,
    routes={
        **OPERATIONS,
        ("POST", "/api/tasks"): Case(
            EVERYONE, body=lambda ctx: {"title": ctx.unique("Task "), "description": ""}
        ),
        ("GET", "/api/tasks"): Case(EVERYONE),
        ("GET", "/api/tasks/{public_id}"): Case(
            EVERYONE, path=lambda ctx: {"public_id": ctx.data["task"]}
        ),
        ("GET", "/api/tasks/{public_id}/assignments"): Case(
            EVERYONE, path=lambda ctx: {"public_id": ctx.data["task"]}
        ),
        ("POST", "/api/tasks/shuffle"): Case(frozenset({"admin", "manager"})),
        # only the assignee may complete (T6): every other role is refused with 403
        ("POST", "/api/tasks/{public_id}/complete"): Case(
            frozenset({"worker"}), path=lambda ctx: {"public_id": ctx.data["task"]}
        ),
    },
)

# --- billing -----------------------------------------------------------------------------

ACCOUNTING = frozenset({"admin", "accountant"})


async def _billing_accounts(harness: Harness, ctx: Ctx) -> None:
    task = str(uuid.uuid4())
    async with harness.runtime.uow() as uow:
        for public_id in ctx.people.values():
            await ledger.person_account_id(uow.session, public_id)
        await ledger.priced_task(uow, task, random.Random(1), datetime.now(UTC))
        await uow.commit()
    ctx.data["task"] = task
    ctx.data["today"] = datetime.now(UTC).date().isoformat()


def _worker_account(ctx: Ctx) -> dict[str, str]:
    return {"owner_public_id": ctx.people["worker"]}


BILLING = Table(
    setup=_billing_accounts,
    routes={
        **OPERATIONS,
        ("GET", "/api/accounts/me"): Case(EVERYONE),
        ("GET", "/api/accounts/me/transactions"): Case(EVERYONE),
        ("GET", "/api/accounts/{owner_public_id}"): Case(ACCOUNTING, path=_worker_account),
        ("GET", "/api/accounts/{owner_public_id}/transactions"): Case(
            ACCOUNTING, path=_worker_account
        ),
        ("GET", "/api/dashboard"): Case(ACCOUNTING, query=lambda ctx: {"days": "7"}),
        ("GET", "/api/tasks/{task_public_id}/price"): Case(
            EVERYONE, path=lambda ctx: {"task_public_id": ctx.data["task"]}
        ),
        ("POST", "/api/days/{date}/close"): Case(
            ACCOUNTING, path=lambda ctx: {"date": ctx.data["today"]}
        ),
    },
)

# --- analytics (DESIGN.md §4: admins only) ------------------------------------------------

ANALYTICS = Table(
    routes={
        **OPERATIONS,
        ("GET", "/api/dashboard"): Case(ADMINS, query=lambda ctx: {"date": "2026-03-03"}),
        ("GET", "/api/most-expensive"): Case(
            ADMINS, query=lambda ctx: {"from": "2026-03-01", "to": "2026-03-03"}
        ),
        ("GET", "/api/negative-balances"): Case(ADMINS),
    },
)

# --- notifications (no API but its status) -------------------------------------------

NOTIFICATIONS = Table(routes={**OPERATIONS})

TABLES: dict[str, Table] = {
    "auth": AUTH,
    "tasks": TASKS,
    "billing": BILLING,
    "analytics": ANALYTICS,
    "notifications": NOTIFICATIONS,
}


# --- the matrix ---------------------------------------------------------------------------


def api_routes(service: str, data_dir: Path) -> set[tuple[str, str]]:
    """Every (method, path) under /api of the service's real app, hidden ones included
    (FastAPI includes routers lazily: ``app.routes`` alone does not list their routes)."""
    app = create_app(spec(service), make_settings(data_dir, None), messaging=False)
    found = set()
    for route in iter_route_contexts(app.routes):
        path = route.path or ""
        if path == "/api" or path.startswith("/api/"):
            for method in (route.methods or set()) - {"HEAD", "OPTIONS"}:
                found.add((method, path))
    # the walk must see at least what the OpenAPI document lists
    documented = {
        (method.upper(), path)
        for path, operations in app.openapi().get("paths", {}).items()
        if path.startswith("/api/")
        for method in operations
    }
    assert documented <= found, f"route walk missed {sorted(documented - found)}"
    return found


def test_every_service_has_a_table() -> None:
    assert set(TABLES) == set(SERVICES)


@pytest.mark.parametrize("service", SERVICES)
def test_every_api_route_has_an_entry(service: str, tmp_path: Path) -> None:
    routes = api_routes(service, tmp_path)
    table = set(TABLES[service].routes)
    missing = sorted(routes - table)
    stale = sorted(table - routes)
    assert not missing, f"{service}: routes with no entry in the matrix: {missing}"
    assert not stale, f"{service}: matrix entries with no route: {stale}"


def _unsigned(claims: dict[str, Any]) -> str:
    def b64(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


def bad_tokens(tokens: TokenFactory, role: str, sub: str) -> dict[str, str]:
    """Tokens that must be refused, each wrong in one way only."""
    impostor = RSAKey.generate_key(2048, parameters={"kid": str(tokens.key.kid)})
    now = int(time.time())
    good_claims = {
        "iss": ISSUER,
        "aud": API_AUDIENCE,
        "sub": sub,
        "role": role,
        "preferred_username": "matrix",
        "iat": now,
        "exp": now + 300,
    }
    return {
        "forged": tokens.token(role, sub, key=impostor),
        "expired": tokens.token(role, sub, ttl=-120),
        "wrong audience": tokens.token(role, sub, aud="some-other-api"),
        "wrong issuer": tokens.token(role, sub, iss="http://impostor.test"),
        "alg none": _unsigned(good_claims),
        "not a jwt": "not-a-jwt",
    }


@pytest.mark.parametrize("service", SERVICES)
async def test_matrix(service: str, tmp_path: Path, tokens: TokenFactory) -> None:
    table = TABLES[service]
    if not table.routes:
        assert not api_routes(service, tmp_path / "routes"), "routes without a table"
        return
    settings = make_settings(tmp_path / "data", None)
    ctx = Ctx(people={role: str(uuid.uuid4()) for role in ROLES})
    problems: list[str] = []
    async with service_harness(service, settings, tokens, messaging=False) as harness:
        if table.setup is not None:
            await table.setup(harness, ctx)

        async def call(method: str, path: str, case: Case, headers: dict[str, str]) -> int:
            url = path.format(**case.path(ctx))
            body = case.body(ctx) if case.body is not None else None
            response = await harness.client.request(
                method, url, json=body, params=case.query(ctx), headers=headers
            )
            return response.status_code

        for (method, path), case in sorted(table.routes.items()):
            route = f"{method} {path}"
            allowed = sorted(case.roles)
            if (status := await call(method, path, case, {})) != 401:
                problems.append(f"{route}: no token → {status}, expected 401")
            for defect, token in bad_tokens(tokens, allowed[0], ctx.people[allowed[0]]).items():
                headers = {"Authorization": f"Bearer {token}"}
                if (status := await call(method, path, case, headers)) != 401:
                    problems.append(f"{route}: {defect} token → {status}, expected 401")
            for role in ROLES:
                headers = tokens.headers(role, ctx.people[role], username=f"matrix-{role}")
                status = await call(method, path, case, headers)
                if role in case.roles and not 200 <= status < 300:
                    problems.append(f"{route}: {role} → {status}, expected 2xx")
                if role not in case.roles and status != 403:
                    problems.append(f"{route}: {role} → {status}, expected 403")
    assert not problems, f"{service}:\n" + "\n".join(problems)

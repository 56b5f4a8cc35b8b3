"""Test helpers: real NATS servers, real databases, signed tokens, service harnesses."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import insert

from ates.config import Settings
from ates.platform import migrations
from ates.platform.broker import OutgoingMessage, create_broker
from ates.platform.consumer import Rejected
from ates.platform.db import Database
from ates.platform.events import Event
from ates.platform.runtime import Runtime, ServiceSpec, build_runtime
from ates.platform.security import API_AUDIENCE, StaticJwks, TokenVerifier
from ates.platform.service import create_app, running
from ates.platform.tables import dead_letters
from ates.platform.tracing import Tracing
from ates.platform.uow import UnitOfWork
from ates.services.registry import spec

ISSUER = "http://issuer.test"


class TokenFactory:
    """Signs JWTs the way the auth service does, with a key the test controls."""

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig"})
        self.key_set = KeySet([self.key])

    def verifier(self, issuer: str = ISSUER) -> TokenVerifier:
        public = KeySet.import_key_set(self.key_set.as_dict(private=False))
        return TokenVerifier(StaticJwks(public), issuer=issuer)

    def token(
        self,
        role: str = "worker",
        sub: str | uuid.UUID | None = None,
        *,
        username: str = "someone",
        ttl: int = 300,
        key: RSAKey | None = None,
        **claims: Any,
    ) -> str:
        now = int(time.time())
        body = {
            "iss": ISSUER,
            "aud": API_AUDIENCE,
            "sub": str(sub or uuid.uuid4()),
            "role": role,
            "preferred_username": username,
            "iat": now,
            "exp": now + ttl,
            **claims,
        }
        signing = key or self.key
        return jwt.encode({"alg": "RS256", "kid": signing.kid}, body, signing)

    def headers(
        self, role: str = "worker", sub: str | uuid.UUID | None = None, **claims: Any
    ) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, sub, **claims)}"}


class Harness:
    """One service running in-process: database migrated, relay and consumers on the
    real broker, an HTTP client on its ASGI app."""

    def __init__(self, runtime: Runtime, client: httpx.AsyncClient) -> None:
        self.runtime = runtime
        self.client = client

    @property
    def db(self) -> Database:
        return self.runtime.db


@asynccontextmanager
async def service_harness(
    service: str | ServiceSpec,
    settings: Settings,
    tokens: TokenFactory,
    *,
    messaging: bool = True,
    tracing: Tracing | None = None,
) -> AsyncIterator[Harness]:
    """``service``: one of aTES's services by name, or a test's own spec (whose name says
    whose migrations its database gets)."""
    service = spec(service) if isinstance(service, str) else service
    runtime = build_runtime(service, settings, verifier=tokens.verifier(), tracing=tracing)
    await migrations.upgrade(service.name, runtime.db)
    app = create_app(service, settings, runtime=runtime, messaging=False)
    async with running(runtime, messaging=messaging):
        if messaging:
            await asyncio.wait_for(runtime.broker_ready.wait(), 20)
        transport = httpx.ASGITransport(app=app)
        base_url = f"http://{service.name}"
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield Harness(runtime, client)


class FailingHandler:
    """The ``AccountCreated`` handler of a test service: raises ``failure`` until
    ``fixed`` (a bug, a database away), then applies; a person named
    :data:`REJECTED_NAME` is refused for good."""

    REJECTED_NAME = "rejected-one"

    def __init__(self, failure: Exception) -> None:
        self.failure = failure
        self.fixed = False
        self.applied: list[str] = []

    async def __call__(self, event: Event, uow: UnitOfWork) -> None:
        if event.data["username"] == self.REJECTED_NAME:
            raise Rejected("no such person may exist")
        if not self.fixed:
            raise self.failure.with_traceback(None)  # a fresh traceback each time
        self.applied.append(str(event.event_id))


def failing_service(
    settings: Settings, tokens: TokenFactory, handler: FailingHandler
) -> AbstractAsyncContextManager[Harness]:
    """A test service (notifications' database) with its pages, consuming
    ``AccountCreated`` from the broker with ``handler``: for dead letters."""
    consumer = ServiceSpec(
        name="notifications", title="Dead-letter test", consumes={"AccountCreated": handler}
    )
    return service_harness(consumer, settings, tokens)


async def publish(settings: Settings, *messages: OutgoingMessage) -> None:
    """Publish ``messages`` on the broker of ``settings``, as another service would."""
    assert settings.broker_url is not None
    broker = create_broker(settings.broker_url)
    await broker.connect()
    try:
        await broker.publish(list(messages))
    finally:
        await broker.close()


async def eventually(
    check: Callable[[], Awaitable[Any]], timeout: float = 15, interval: float = 0.05
) -> Any:
    """Await ``check()`` until it returns a truthy value (returned) or time runs out."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


def make_settings(data_dir: Path, broker_url: str | None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "broker_url": broker_url,
        "outbox_poll_seconds": 0.2,
        "retry_backoff_seconds": 0.05,
        "auth_url": ISSUER,
        **overrides,
    }
    return Settings(**values)


async def page_cookie(
    runtime: Runtime,
    role: str = "worker",
    sub: str | uuid.UUID | None = None,
    username: str = "someone",
    **extra: Any,
) -> dict[str, str]:
    """A signed session cookie for the service's pages, as the login flow leaves it (its
    session recorded on the server too), for page tests that do not exercise the login.
    ``extra``: more session values (auth's own pages want ``signed_in_at``)."""
    import base64
    import json

    from itsdangerous import TimestampSigner

    from ates.platform import sessions

    person = str(sub or uuid.uuid4())
    session = {
        sessions.SESSION_ID: await sessions.open_session(runtime, person),
        "principal": {"public_id": person, "role": role, "username": username},
        **extra,
    }
    data = base64.b64encode(json.dumps(session).encode())
    value = TimestampSigner(runtime.settings.secret_key).sign(data).decode()
    return {f"ates_{runtime.spec.name}_session": value}


async def store_dead_letter(db: Database, consumer: str) -> tuple[int, Event]:
    """A dead letter of ``consumer`` as a failed handler leaves it (an ``AccountDeactivated``
    after five attempts): its id and the event inside."""
    event = Event(
        event_name="AccountDeactivated",
        event_version=1,
        producer="auth",
        data={"public_id": str(uuid.uuid4())},
    )
    async with db.sessions() as session, session.begin():
        letter_id = await session.scalar(
            insert(dead_letters)
            .returning(dead_letters.c.id)
            .values(
                consumer=consumer,
                event_id=str(event.event_id),
                event_name=event.event_name,
                subject="accounts.AccountDeactivated",
                payload=event.to_json(),
                error="failed: RuntimeError('bug')",
                attempts=5,
                created_at=datetime.now(UTC),
            )
        )
    assert letter_id is not None
    return int(letter_id), event

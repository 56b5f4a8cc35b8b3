"""How a service is declared (``ServiceSpec``) and wired into a running process.

A service module declares what it is: its name, the events it consumes, its routers and
background jobs. :func:`create_app` builds the FastAPI app whose lifespan bootstraps
everything: database, broker connection, outbox relay, one consumer per consumed domain.
Nothing connects at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from fastapi import APIRouter, FastAPI

from ates.config import Settings
from ates.platform import redaction
from ates.platform.broker import Broker, BrokerUnavailable, create_broker
from ates.platform.consumer import EventConsumer, Handler
from ates.platform.db import Database
from ates.platform.events import Registry, default_registry
from ates.platform.limits import JSON_BODY_MAX
from ates.platform.outbox import OutboxRelay
from ates.platform.security import RemoteJwks, TokenVerifier
from ates.platform.sessions import StandingOf
from ates.platform.tracing import Tracing
from ates.platform.uow import UnitOfWork

log = structlog.get_logger(__name__)

BackgroundJob = Callable[["Runtime"], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    title: str
    consumes: Mapping[str, Handler] = field(default_factory=dict)
    # the event domains whose events this service produces (the event catalog says so)
    produces: Sequence[str] = ()
    routers: Sequence[APIRouter] = ()
    background: Sequence[BackgroundJob] = ()
    templates: Path | None = None
    # called once in the lifespan after the database is ready (e.g. register clients)
    on_startup: Sequence[BackgroundJob] = ()
    # A read model (state rebuilt from events only) sets this: it deletes the projections
    # in the replay's transaction. Such a service consumes in generations that
    # `ates replay` can rebuild from the broker's log (ates.platform.replay).
    read_model_reset: Callable[[UnitOfWork], Awaitable[None]] | None = None
    # A service with pages that keeps a copy of people says here what its copy knows of
    # someone: the pages then honour a role change or deactivation at once (sessions).
    standing: StandingOf | None = None

    def consumer_group(self, generation: int = 1) -> str:
        return self.name if generation == 1 else f"{self.name}-g{generation}"


@dataclass
class Runtime:
    """Everything a request or a job of one service process needs."""

    settings: Settings
    spec: ServiceSpec
    db: Database
    registry: Registry
    verifier: TokenVerifier
    tracing: Tracing = field(default_factory=Tracing.off)
    broker: Broker | None = None
    broker_ready: asyncio.Event = field(default_factory=asyncio.Event)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def service(self) -> str:
        return self.spec.name

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.db, producer=self.spec.name, registry=self.registry)

    def consumer(
        self, inbox_name: str | None = None, handlers: Mapping[str, Handler] | None = None
    ) -> EventConsumer:
        return EventConsumer(
            self.spec.name,
            self.db,
            self.spec.consumes if handlers is None else handlers,
            self.registry,
            max_deliveries=self.settings.max_deliveries,
            backoff_seconds=self.settings.retry_backoff_seconds,
            inbox_name=inbox_name,
            tracing=self.tracing,
        )


def build_runtime(
    spec: ServiceSpec,
    settings: Settings,
    *,
    verifier: TokenVerifier | None = None,
    tracing: Tracing | None = None,
) -> Runtime:
    registry = default_registry()
    redaction.remember(settings.secret_key)
    if verifier is None:
        jwks = RemoteJwks(f"{settings.public_url('auth')}/.well-known/jwks.json")
        verifier = TokenVerifier(jwks, issuer=settings.issuer)
    tracing = tracing or Tracing.from_mode(spec.name, settings.otel)
    db = Database(settings.database_url(spec.name))
    tracing.instrument_engine(db.engine)
    return Runtime(
        settings=settings,
        spec=spec,
        db=db,
        registry=registry,
        verifier=verifier,
        tracing=tracing,
    )


def domains_consumed(spec: ServiceSpec, registry: Registry) -> dict[str, list[str]]:
    by_domain: dict[str, list[str]] = defaultdict(list)
    for name in spec.consumes:
        by_domain[registry.domain_of(name)].append(name)
    return dict(by_domain)


async def run_messaging(
    runtime: Runtime, *, consumer_generation: int = 1, consume: bool = True
) -> None:
    """Connect to the broker (retrying), then run the relay and the consumers forever
    (without ``consume``, the relay only: a process that publishes and leaves consuming
    to others).

    A read model (``spec.read_model_reset``) follows the generation recorded in its
    database instead (``consumer_generation`` is the one used until a replay records
    another): it pauses while ``ates replay`` rebuilds it and resumes on the new group.
    """
    settings = runtime.settings
    if settings.broker_url is None:
        raise RuntimeError("ATES_BROKER_URL is not set")
    broker = create_broker(
        settings.broker_url,
        max_age_days=settings.stream_max_age_days,
        max_bytes=settings.stream_max_bytes,
    )
    delay = 0.5
    while True:
        try:
            await broker.connect()
            await broker.ensure_streams(runtime.registry.domains())
            break
        except BrokerUnavailable as error:
            log.warning("broker.unavailable", service=runtime.service, error=str(error))
            await broker.close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)
    runtime.broker = broker
    runtime.broker_ready.set()
    relay = OutboxRelay(
        runtime.service,
        runtime.db,
        broker,
        batch_size=settings.outbox_batch_size,
        poll_seconds=settings.outbox_poll_seconds,
        registry=runtime.registry,
        tracing=runtime.tracing,
        produces=runtime.spec.produces,
    )
    consumer = runtime.consumer()
    group = runtime.spec.consumer_group(consumer_generation)
    try:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(relay.run())
            if consume and runtime.spec.read_model_reset is not None:
                from ates.platform.replay import follow_generations

                tasks.create_task(follow_generations(runtime, broker, default=consumer_generation))
            elif consume:
                for domain in domains_consumed(runtime.spec, runtime.registry):
                    # every message of the domain: a name this process does not know is
                    # dead-lettered, one it knows but does not handle is skipped
                    tasks.create_task(
                        broker.consume(
                            group, domain, None, consumer, batch_size=settings.consumer_batch_size
                        )
                    )
    finally:
        runtime.broker_ready.clear()
        runtime.broker = None
        await broker.close()


@contextlib.asynccontextmanager
async def running(
    runtime: Runtime, *, messaging: bool = True, consume: bool = True
) -> AsyncIterator[Runtime]:
    """Start the background side of a service process; stop it cleanly on exit (without
    ``messaging``, no broker at all; without ``consume``, the relay but no consumers)."""
    for job in runtime.spec.on_startup:
        await job(runtime)
    jobs: list[tuple[str, Callable[[], Coroutine[Any, Any, None]]]] = []
    if messaging:
        jobs.append(("messaging", lambda: run_messaging(runtime, consume=consume)))
        if consume and runtime.spec.consumes and runtime.settings.dead_letter_retries_at_start:
            from ates.platform.deadletters import retry_at_start

            started = datetime.now(UTC)  # letters from before this start, not of this run
            jobs.append(("dead-letter retry", lambda: retry_at_start(runtime, started)))
    for job in runtime.spec.background:
        jobs.append((job.__name__, functools.partial(job, runtime)))
    tasks = [asyncio.create_task(supervised(name, start), name=name) for name, start in jobs]
    try:
        yield runtime
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            await stopped(task)
        await runtime.db.dispose()
        runtime.tracing.shutdown()


async def stopped(task: asyncio.Task[None], *, again_after: float = 1.0) -> None:
    """Wait until a cancelled task has stopped, cancelling it again while it runs on. A
    library can swallow a cancellation (Python 3.11's ``asyncio.wait_for`` drops one that
    arrives as what it waits for completes; nats-py waits so when connecting and
    fetching): the task then goes on as if never asked, and a service that stops would
    wait for it forever."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=again_after)
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.result()


async def supervised(
    name: str,
    start: Callable[[], Coroutine[Any, Any, None]],
    *,
    first_delay: float = 1.0,
    max_delay: float = 30,
) -> None:
    """Run a background job for the life of the process: one that dies (a bug, a lost
    connection that escaped its own retries) is logged and started again, with growing
    delays, instead of leaving a service that answers HTTP but no longer consumes."""
    delay = first_delay
    while True:
        try:
            await start()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("service.background_failed", task=name, restart_in=delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_delay)


def create_app(
    spec: ServiceSpec, settings: Settings, *, runtime: Runtime | None = None, messaging: bool = True
) -> FastAPI:
    from ates.platform.admin import install_admin
    from ates.platform.catalog import install_catalog
    from ates.platform.login import install_login
    from ates.platform.web import install_common

    runtime = runtime or build_runtime(spec, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running(runtime, messaging=messaging):
            yield

    # /docs is ours (ates.platform.apidocs): Swagger UI from the package, not a CDN
    app = FastAPI(title=f"aTES {spec.title}", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.runtime = runtime
    install_common(app, runtime)
    install_catalog(app)
    runtime.tracing.instrument_app(app)
    install_login(app, runtime)
    install_admin(app, runtime)
    for router in spec.routers:
        # Bodies are read into memory: a bigger one is refused (413) before it is parsed.
        # Every JSON body of the API fits in far less; a router may allow more (a form).
        # Per router, not per app: FastAPI's app-wide cap answers in plain text.
        app.include_router(router, max_body_size=JSON_BODY_MAX)
    return app

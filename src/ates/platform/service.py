"""How a service process runs: :func:`create_app` builds the FastAPI app whose lifespan
(:func:`running`) bootstraps everything: database, broker connection, outbox relay, one
consumer per consumed domain, the spec's background jobs. What a service is and what a
process holds (``ServiceSpec``, ``Runtime``) is ``ates.platform.runtime``. Nothing
connects at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi import FastAPI

from ates.config import Settings
from ates.platform.admin import install_admin
from ates.platform.broker import BrokerUnavailable, create_broker
from ates.platform.catalog import install_catalog
from ates.platform.deadletters import retry_at_start
from ates.platform.limits import JSON_BODY_MAX
from ates.platform.login import install_login
from ates.platform.outbox import OutboxRelay
from ates.platform.rebuild import follow_generations
from ates.platform.runtime import Runtime, ServiceSpec, build_runtime, domains_consumed
from ates.platform.web import install_common

log = structlog.get_logger(__name__)


async def run_messaging(
    runtime: Runtime, *, consumer_generation: int = 1, consume: bool = True
) -> None:
    """Connect to the broker (retrying), then run the relay and the consumers forever
    (without ``consume``, the relay only: a process that publishes and leaves consuming
    to others).

    A read model (``spec.read_model_reset``) follows the generation recorded in its
    database instead (``consumer_generation`` is the one used until a rebuild records
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

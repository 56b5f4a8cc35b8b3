"""The gauges read when ``/metrics`` is scraped: outbox backlog and the age of its oldest
row, dead letters pending, and each consumer group's lag at the broker.

Read at scrape time, not kept up to date on the hot path: a scrape costs two small
queries and one broker round trip per consumed domain, and nothing when nobody scrapes.
Two scrapes within :data:`MIN_INTERVAL` share one reading. A value that cannot be read (the
broker is away) is NaN, never a stale number.
"""

from __future__ import annotations

import asyncio
import math
import time
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ates.platform.broker import BrokerUnavailable
from ates.platform.rebuild import read_generation
from ates.platform.runtime import Runtime, domains_consumed
from ates.platform.tables import dead_letters, outbox
from ates.platform.telemetry import (
    CONSUMER_LAG,
    DEAD_LETTERS_PENDING,
    OUTBOX_BACKLOG,
    OUTBOX_OLDEST_AGE,
)

log = structlog.get_logger(__name__)

MIN_INTERVAL = 1.0  # seconds
BROKER_TIMEOUT = 2.0  # seconds a scrape waits for the broker


async def sample(runtime: Runtime) -> None:
    """Refresh this service's gauges (at most once per :data:`MIN_INTERVAL`)."""
    now = time.monotonic()
    if now - runtime.gauges_sampled_at < MIN_INTERVAL:
        return
    runtime.gauges_sampled_at = now
    service = runtime.service
    async with runtime.db.reader() as session:
        backlog, oldest_age, pending = await local_figures(session)
        groups = await consumer_groups(runtime, session)
    OUTBOX_BACKLOG.labels(service).set(backlog)
    OUTBOX_OLDEST_AGE.labels(service).set(oldest_age or 0.0)
    DEAD_LETTERS_PENDING.labels(service).set(pending)
    for group, domain in groups:
        CONSUMER_LAG.labels(service, group, domain).set(await read_lag(runtime, group, domain))


async def local_figures(session: Any) -> tuple[int, float | None, int]:
    """From the service's own database: outbox rows not yet published, the age in
    seconds of the oldest of them (None when none waits), dead letters pending."""
    backlog, oldest = (
        await session.execute(
            select(func.count(), func.min(outbox.c.created_at)).where(
                outbox.c.published_at.is_(None)
            )
        )
    ).one()
    pending = await session.scalar(
        select(func.count()).select_from(dead_letters).where(dead_letters.c.status == "pending")
    )
    age = None
    if oldest is not None:
        oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
        age = max(0.0, (datetime.now(UTC) - oldest).total_seconds())
    return int(backlog or 0), age, int(pending or 0)


async def consumer_groups(runtime: Runtime, session: AsyncSession) -> list[tuple[str, str]]:
    """(group, domain) of each domain the service consumes, on its live generation."""
    spec = runtime.spec
    domains = domains_consumed(spec, runtime.registry)
    generation = 1
    if domains and spec.read_model_reset is not None:
        generation = (await read_generation(session, spec.name)).live
    return [(spec.consumer_group(generation), domain) for domain in domains]


async def read_lag(runtime: Runtime, group: str, domain: str) -> float:
    """The group's lag at the broker; NaN if the broker cannot say now."""
    broker = runtime.broker
    if broker is None:
        return math.nan
    try:
        async with asyncio.timeout(BROKER_TIMEOUT):
            lag = await broker.lag(group, domain)
    except (BrokerUnavailable, TimeoutError) as error:
        log.info("gauges.lag_unavailable", group=group, domain=domain, error=str(error))
        return math.nan
    return math.nan if lag is None else float(lag)

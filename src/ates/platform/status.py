"""What one service process says of itself to an operator: ``GET /api/admin/status`` (the
JSON that ``ates status`` and the status page read).

Health and version, the outbox backlog and the age of its oldest unsent row, the dead
letters pending, each consumer group with what it applied and its lag at the broker, and
the broker's streams with their sizes. Read when asked, like the gauges of ``/metrics``
(:mod:`ates.platform.gauges`), with the same queries; a figure the broker cannot give
now (it is away, or does not know the group yet) is ``None``, never a stale number.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from functools import cache
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Any

from sqlalchemy import func, select

from ates.platform.broker import BrokerUnavailable
from ates.platform.gauges import BROKER_TIMEOUT, consumer_groups, local_figures, read_lag
from ates.platform.runtime import Runtime
from ates.platform.tables import inbox


@cache
def version() -> str:
    """The installed ``ates`` package's version ("0" when run from a bare source tree)."""
    try:
        return package_version("ates")
    except PackageNotFoundError:
        return "0"


async def read_status(runtime: Runtime) -> dict[str, Any]:
    """This process's status (the JSON of ``GET /api/admin/status``)."""
    async with runtime.db.reader() as session:
        backlog, oldest_age, pending = await local_figures(session)
        groups = await consumer_groups(runtime, session)
        applied = await _applied(session, runtime, {group for group, _ in groups})
    connected = runtime.broker_ready.is_set()
    return {
        "service": runtime.service,
        "version": version(),
        "status": "ok",
        "broker": "connected" if connected else "connecting",
        "outbox": {"backlog": backlog, "oldest_unsent_age_seconds": oldest_age},
        "dead_letters": {"pending": pending},
        "consumer_groups": [
            {
                "group": group,
                "domain": domain,
                "applied": applied[group, domain],
                "lag": _number(await read_lag(runtime, group, domain)),
            }
            for group, domain in groups
        ],
        "streams": [
            {"domain": domain, "messages": await _log_size(runtime, domain)}
            for domain in runtime.registry.domains()
        ],
    }


async def _applied(session: Any, runtime: Runtime, groups: set[str]) -> Counter[tuple[str, str]]:
    """Events each group applied, by domain: its rows in the inbox (a group records what
    it applied under its own name, ``ates.platform.rebuild``)."""
    counts: Counter[tuple[str, str]] = Counter()
    if not groups:
        return counts
    rows = await session.execute(
        select(inbox.c.consumer, inbox.c.event_name, func.count())
        .where(inbox.c.consumer.in_(groups))
        .group_by(inbox.c.consumer, inbox.c.event_name)
    )
    for group, event_name, count in rows:
        try:
            counts[group, runtime.registry.domain_of(event_name)] += count
        except KeyError:
            continue  # an event the registry no longer knows
    return counts


async def _log_size(runtime: Runtime, domain: str) -> int | None:
    broker = runtime.broker
    if broker is None:
        return None
    try:
        async with asyncio.timeout(BROKER_TIMEOUT):
            return await broker.log_size(domain)
    except (BrokerUnavailable, TimeoutError):
        return None


def _number(value: float) -> int | None:
    return None if math.isnan(value) else int(value)

"""The midnight scheduler: a background job of every billing process that closes the day
that ended (``commands.close_day``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from ates.platform.db import Database
from ates.platform.uow import UnitOfWork
from ates.services.billing import ledger
from ates.services.billing.commands import DayClose, close_day, utc_now

if TYPE_CHECKING:
    from ates.platform.runtime import Runtime

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]

CHECK_EVERY_SECONDS = 30.0


async def close_past_days(
    db: Database, new_uow: Callable[[], UnitOfWork], now: datetime
) -> DayClose | None:
    """Close yesterday (and anything open before it) unless it is closed already.

    The check reads without a lock, so the half-minute checks of every process never hold
    up bookings; only a close that looks due takes the lock (and checks again under it).
    """
    async with db.reader() as session:
        state = await ledger.books(session, lock="none")
    yesterday = state.day_of(now) - timedelta(days=1)
    if state.closed_through is not None and state.closed_through >= yesterday:
        return None
    async with new_uow() as uow:
        result = await close_day(uow, yesterday, now=now)
    return result if result.newly_closed else None


async def run_day_closer(runtime: Runtime, *, clock: Clock = utc_now) -> None:
    """Background job: shortly after midnight in the business zone, close the day that
    ended. It checks every half minute rather than sleeping until midnight, so a process
    that was down at midnight catches up as soon as it runs, and several processes may
    run it at once (the close is idempotent)."""
    while True:
        try:
            result = await close_past_days(runtime.db, runtime.uow, clock())
        except Exception:  # logged and tried again: a missed check must not stop the job
            log.exception("billing.scheduler_failed")
        else:
            if result is not None:
                log.info("billing.scheduler_closed", day=result.business_date.isoformat())
        await asyncio.sleep(CHECK_EVERY_SECONDS)

"""The billing service, as the platform runs it."""

from __future__ import annotations

from pathlib import Path

from ates.platform.runtime import Runtime, ServiceSpec
from ates.services.billing import api, ledger, pages, queries, scheduler
from ates.services.billing.consumers import HANDLERS


async def record_timezone(runtime: Runtime) -> None:
    """Count days in ``ATES_TIMEZONE``: every handler, close and command reads it from the
    books, so all processes on one database date movements alike."""
    async with runtime.uow() as uow:
        await ledger.set_timezone(uow.session, runtime.settings.timezone)
        await uow.commit()


SPEC = ServiceSpec(
    name="billing",
    title="Accounting",
    produces=("billing",),
    consumes=HANDLERS,
    routers=(api.router, pages.router),
    background=(scheduler.run_day_closer,),
    templates=Path(__file__).parent / "templates",
    on_startup=(record_timezone,),
    standing=queries.standing,
)

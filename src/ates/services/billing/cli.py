"""``ates billing close-day DATE`` and ``ates billing verify``.

They work on billing's database whether or not the service runs; events they cause
(``PayoutMade``, ``DayClosed``, …) wait in the outbox until a billing process publishes them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from ates.clitools import DataDirOption, console, fail, load_settings, with_runtime
from ates.platform.money import format_cents

if TYPE_CHECKING:
    from ates.platform.runtime import Runtime
    from ates.services.billing import commands

billing_app = typer.Typer(
    rich_markup_mode=None, no_args_is_help=True, help="Accounting: close days, check the books."
)


@billing_app.command("close-day")
def close_day(
    day: Annotated[str, typer.Argument(metavar="YYYY-MM-DD", help="The business day to close.")],
    data_dir: DataDirOption = None,
) -> None:
    """Close a business day: pay out positive balances and carry debts over. Closing a
    day again pays nothing twice."""
    from ates.services.billing import commands, domain, ledger

    try:
        target = date.fromisoformat(day)
    except ValueError:
        fail(f"date: {day!r} is not a date (YYYY-MM-DD)")
    settings = load_settings(data_dir)

    async def _close(runtime: Runtime) -> commands.DayClose:
        async with runtime.uow() as uow:
            await ledger.set_timezone(uow.session, settings.timezone)
            return await commands.close_day(uow, target, now=datetime.now(UTC))

    try:
        result = with_runtime("billing", settings, _close)
    except domain.DayRuleError as error:
        fail(f"date: {error}")
    if not result.newly_closed:
        console.print(f"{target.isoformat()} was already closed: nothing paid again.")
    else:
        for earlier in result.also_closed:
            console.print(f"closed {earlier.isoformat()} first (days close in order)")
        console.print(
            f"closed {target.isoformat()}: {len(result.payouts)} payouts, "
            f"{format_cents(result.paid_cents)} paid out"
        )
    for payout in result.payouts:
        console.print(
            f"  {payout.business_date.isoformat()}  {payout.owner_public_id}  "
            f"{format_cents(payout.amount_cents)}"
        )


@billing_app.command("verify")
def verify_books(data_dir: DataDirOption = None) -> None:
    """Check the ledger's invariants; exit with 1 if any is broken."""
    from ates.services.billing import verify

    settings = load_settings(data_dir)

    async def _check(runtime: Runtime) -> list[str]:
        async with runtime.db.reader() as session:
            return await verify.problems(session)

    found = with_runtime("billing", settings, _check)
    for problem in found:
        console.print(f"[red]✗[/] {problem}", highlight=False)
    if found:
        console.print(f"[red]{len(found)} problems in the books[/]")
        raise typer.Exit(1)
    console.print(
        "books ok: every transaction balances, cached balances equal their entries, "
        "one price per task, no event booked twice, at most one payout per person and day"
    )


def register(app: typer.Typer) -> None:
    """Mount this service's commands on the main `ates` app."""
    app.add_typer(billing_app, name="billing")

"""The summary printed after a simulation."""

from __future__ import annotations

from typing import Any

from ates.config import Settings
from ates.platform.money import format_cents
from ates.simulate.client import SIMULATED_LOGINS_FILE
from ates.simulate.plan import Summary


def render(summary: Summary, settings: Settings) -> Any:
    """The summary as rich renderables (printed by the command)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    day = summary.business_date.isoformat() if summary.business_date else "today"
    done = Table("", "", title=f"Simulated day {day}", show_header=False, title_justify="left")
    done.add_row("workers created", str(len(summary.workers)))
    done.add_row("tasks created", str(summary.tasks))
    done.add_row("shuffles", f"{summary.shuffles} ({summary.reassigned} open tasks reassigned)")
    done.add_row("tasks completed", str(summary.completed))
    if summary.not_completed_unknown_assignee:
        done.add_row(
            "left open",
            f"{summary.not_completed_unknown_assignee} (assignee's password not known here)",
        )
    done.add_row("fees charged for them", format_cents(summary.fees_cents))
    done.add_row("rewards paid for them", format_cents(summary.rewards_cents))
    booked = ", ".join(d.isoformat() for d in sorted(summary.booked_on)) or "-"
    done.add_row("booked on", booked)
    if summary.closed is not None:
        payouts = summary.closed["payouts"]
        state = "closed" if summary.closed["newly_closed"] else "was closed already"
        done.add_row(
            f"{day} {state}",
            f"{len(payouts)} payouts, {format_cents(summary.closed['paid_cents'])}",
        )
    if summary.billing_earnings_cents is not None:
        done.add_row("management earnings today", format_cents(summary.billing_earnings_cents))
    if summary.analytics_earnings_cents is not None:
        agrees = summary.analytics_earnings_cents == summary.billing_earnings_cents
        note = "agrees with billing" if agrees else "still catching up with billing"
        done.add_row(
            "… as analytics sees them", f"{format_cents(summary.analytics_earnings_cents)} ({note})"
        )
    parts: list[Any] = [done]
    if summary.workers:
        people = Table(
            "username",
            "password",
            title="New workers",
            title_justify="left",
        )
        for login in summary.workers:
            people.add_row(login.username, login.password)
        saved = Text(f"(also in {settings.data_dir / SIMULATED_LOGINS_FILE})", style="dim")
        parts += [people, saved]
    links = Table("dashboard", "URL", show_header=False, title="Look", title_justify="left")
    for service in ("tasks", "billing", "analytics", "notifications"):
        links.add_row(service, settings.public_url(service) + "/")
    parts.append(links)
    return Group(*parts)

"""Use cases of the billing service: closing business days — payouts, carried-over debts,
``DayClosed`` (B7).

``close_day`` is the one use case behind the midnight ``scheduler``, ``POST
/api/days/{date}/close`` and ``ates billing close-day``. It is idempotent, and two
processes closing at once pay once: the close locks the books row first (PostgreSQL
``FOR UPDATE``; SQLite has one writer at a time), re-reads where the books stand, and
``closed_days`` has the day as its primary key as a last line of defence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from ates.platform.uow import UnitOfWork
from ates.schemas.billing import DayClosed, PayoutMade
from ates.services.billing import domain, ledger
from ates.services.billing.models import Account, ClosedDay, Entry, Transaction

log = structlog.get_logger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Payout:
    owner_public_id: str
    amount_cents: int
    transaction_public_id: str
    business_date: date


@dataclass(frozen=True, slots=True)
class DayClose:
    """What a close of ``business_date`` did, or had done when it was first closed.

    ``payouts`` are those of every day this close closed (``also_closed``, then
    ``business_date``), each with its day; ``paid_cents`` is their total."""

    business_date: date
    closed_at: datetime
    newly_closed: bool
    payouts: list[Payout]
    # older open days closed first, in order (days close in order; see domain)
    also_closed: list[date] = field(default_factory=list)

    @property
    def paid_cents(self) -> int:
        return sum(p.amount_cents for p in self.payouts)


async def close_day(uow: UnitOfWork, target: date, *, now: datetime) -> DayClose:
    """Close ``target`` (and every open day before it), then commit.

    Raises :class:`domain.DayRuleError` for a day after today (in the business zone).
    Closing an already closed day changes nothing and reports its payouts.
    """
    session = uow.session
    state = await ledger.books(session, lock="update")
    earliest_query = sa.select(sa.func.min(Entry.business_date))
    if state.closed_through is not None:
        earliest_query = earliest_query.where(Entry.business_date > state.closed_through)
    earliest = await session.scalar(earliest_query)
    days = domain.days_to_close(
        target,
        today=state.day_of(now),
        closed_through=state.closed_through,
        earliest_open=earliest,
    )
    if not days:
        return await _already_closed(session, target)
    payouts: list[Payout] = []
    for day in days:
        payouts += await _close_one(uow, day, now)
    await ledger.mark_closed_through(session, target)
    await uow.commit()
    return DayClose(target, now, True, payouts, also_closed=days[:-1])


async def _close_one(uow: UnitOfWork, day: date, now: datetime) -> list[Payout]:
    session = uow.session
    payouts = []
    for owner, balance in await _balances_through(session, day):
        amount = domain.payout_due(balance)
        if not amount:
            continue  # a negative balance carries over to the next day
        transaction = await ledger.post(
            uow,
            domain.payout_posting(owner, amount),
            key=f"payout:{day.isoformat()}:{owner}",
            reason=domain.Reason.PAID_OUT,
            business_date=day,
            applied_at=now,
        )
        if transaction is None:  # cannot happen while the books row is locked
            raise RuntimeError(f"payout of {owner} for {day} already booked")
        payouts.append(Payout(owner, amount, transaction.public_id, day))
        await uow.emit(PayoutMade(owner, amount, day.isoformat()))
    session.add(
        ClosedDay(
            business_date=day,
            closed_at=now,
            payouts=len(payouts),
            paid_cents=sum(p.amount_cents for p in payouts),
        )
    )
    await session.flush()  # the primary key refuses a second close of the same day
    await uow.emit(DayClosed(day.isoformat()))
    log.info("billing.day_closed", day=day.isoformat(), payouts=len(payouts))
    return payouts


async def _balances_through(session: AsyncSession, day: date) -> list[tuple[str, int]]:
    """Each person's balance at the end of ``day``: the cached balance minus whatever was
    booked on later days (only the hours since midnight when closing yesterday)."""
    later = (
        sa.select(Entry.account_id, sa.func.sum(Entry.amount_cents).label("cents"))
        .where(Entry.business_date > day)
        .group_by(Entry.account_id)
        .subquery()
    )
    rows = await session.execute(
        sa.select(
            Account.owner_public_id,
            Account.balance_cents - sa.func.coalesce(later.c.cents, 0),
        )
        .outerjoin(later, later.c.account_id == Account.id)
        .where(Account.kind == "person")
        .order_by(Account.id)
    )
    return [(str(owner), int(balance)) for owner, balance in rows.all()]


async def _already_closed(session: AsyncSession, target: date) -> DayClose:
    closed = await session.get(ClosedDay, target)
    rows = await session.execute(
        sa.select(Account.owner_public_id, Transaction.amount_cents, Transaction.public_id)
        .join(Account, Account.id == Transaction.owner_account_id)
        .where(Transaction.kind == "payout", Transaction.business_date == target)
        .order_by(Transaction.id)
    )
    payouts = [Payout(str(o), int(a), str(t), target) for o, a, t in rows.all()]
    # A day before the first close was never closed on its own: it counts as closed
    # because the books were closed through a later day.
    closed_at = closed.closed_at if closed else None
    return DayClose(target, closed_at or utc_now(), False, payouts)

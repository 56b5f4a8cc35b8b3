"""The read side of billing: balances, audit logs by day, management earnings by day.

Plain functions over a session, shared by the API, the pages and the command line. A
transaction's description is rendered from its stored facts and the task's title as known
now: a fee booked before ``TaskCreated`` arrived still names the task once it has.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ates.platform.events.ordering import stamp_time
from ates.platform.standing import Standing
from ates.services.billing import domain
from ates.services.billing.models import (
    COMPANY_ACCOUNT_ID,
    Account,
    ClosedDay,
    Entry,
    Task,
    Transaction,
)

MAX_DAYS = 366
MAX_LOG = 1000  # movements of one account in one day shown at most


@dataclass(frozen=True, slots=True)
class Movement:
    """One line of an account's audit log."""

    public_id: str
    kind: str
    debit_cents: int
    credit_cents: int
    description: str
    task_public_id: str | None
    business_date: date
    applied_at: datetime
    task_label: str | None = None  # how the description names the task (pages link it)
    owner_name: str | None = None  # whose account moved (filled where a page needs it)

    def to_json(self) -> dict[str, object]:
        return {
            "public_id": self.public_id,
            "kind": self.kind,
            "debit_cents": self.debit_cents,
            "credit_cents": self.credit_cents,
            "description": self.description,
            "task_public_id": self.task_public_id,
            "business_date": self.business_date.isoformat(),
            "applied_at": self.applied_at.isoformat(),
        }


async def account_of(session: AsyncSession, owner_public_id: str) -> Account | None:
    return await session.scalar(
        sa.select(Account).where(Account.owner_public_id == owner_public_id)
    )


async def standing(session: AsyncSession, owner_public_id: str) -> Standing | None:
    """What billing's copy of people says of someone (the pages honour it)."""
    account = await account_of(session, owner_public_id)
    if account is None:
        return None
    return Standing(
        account.owner_role,
        stamp_time(account.role_stamp),
        account.active,
        stamp_time(account.active_stamp),
    )


async def day_log(
    session: AsyncSession,
    account: Account,
    day: date,
    show_day: Callable[[date], str] = date.isoformat,
) -> list[Movement]:
    """The day's first ``MAX_LOG`` movements (a page shows no more; the API pages on)."""
    return (await day_log_page(session, account, day, show_day=show_day)).movements


@dataclass(frozen=True, slots=True)
class LogPage:
    movements: list[Movement]
    next_cursor: int | None  # where the next page starts, if there is one


async def day_log_page(
    session: AsyncSession,
    account: Account,
    day: date,
    *,
    limit: int = MAX_LOG,
    cursor: int | None = None,
    show_day: Callable[[date], str] = date.isoformat,
) -> LogPage:
    """One page of an account's day, oldest first: ``limit`` movements from ``cursor``
    (a position the previous page named), and the next page's cursor if more follow."""
    query = _movements().where(
        Transaction.owner_account_id == account.id, Transaction.business_date == day
    )
    if cursor is not None:
        query = query.where(Transaction.id >= cursor)
    rows = (await session.execute(query.order_by(Transaction.id).limit(limit + 1))).all()
    following = rows[limit][0].id if len(rows) > limit else None
    return LogPage([_movement(*row, show_day=show_day) for row in rows[:limit]], following)


def _movements() -> sa.Select[Transaction, str | None, str | None, str | None]:
    return (
        sa.select(Transaction, Task.title, Task.jira_id, Account.owner_name)
        .outerjoin(Task, Task.public_id == Transaction.task_public_id)
        .join(Account, Account.id == Transaction.owner_account_id)
    )


def _movement(
    transaction: Transaction,
    title: str | None,
    jira_id: str | None,
    owner_name: str | None,
    *,
    show_day: Callable[[date], str],
) -> Movement:
    debit = transaction.kind != domain.Kind.REWARD
    label = domain.task_label(title, jira_id, transaction.task_public_id)
    return Movement(
        public_id=transaction.public_id,
        kind=transaction.kind,
        debit_cents=transaction.amount_cents if debit else 0,
        credit_cents=0 if debit else transaction.amount_cents,
        description=domain.describe(
            domain.Reason(transaction.reason),
            amount_cents=transaction.amount_cents,
            business_date=transaction.business_date,
            task=label if transaction.task_public_id else None,
            booked_late_from=transaction.booked_late_from,
            show_day=show_day,
        ),
        task_public_id=transaction.task_public_id,
        business_date=transaction.business_date,
        applied_at=transaction.applied_at,
        task_label=label if transaction.task_public_id else None,
        owner_name=owner_name,
    )


async def task_movements(
    session: AsyncSession,
    task_public_id: str,
    *,
    owner_account_id: int | None = None,
    show_day: Callable[[date], str] = date.isoformat,
) -> list[Movement]:
    """Every movement of money about one task (or only one account's), oldest first."""
    query = _movements().where(Transaction.task_public_id == task_public_id)
    if owner_account_id is not None:
        query = query.where(Transaction.owner_account_id == owner_account_id)
    rows = await session.execute(query.order_by(Transaction.id).limit(MAX_LOG))
    return [_movement(*row, show_day=show_day) for row in rows.all()]


@dataclass(frozen=True, slots=True)
class DayFigures:
    """One account's day: the balance when it began and ended, and what moved between."""

    start_cents: int
    total_cents: int
    end_cents: int


async def day_figures(session: AsyncSession, account: Account, day: date) -> DayFigures:
    """Derived from the entries: the balance at the end of ``day`` is today's balance
    minus what was booked on later days (as the day close computes it)."""
    row = (
        await session.execute(
            sa.select(
                sa.func.coalesce(
                    sa.func.sum(sa.case((Entry.business_date > day, Entry.amount_cents), else_=0)),
                    0,
                ),
                sa.func.coalesce(
                    sa.func.sum(sa.case((Entry.business_date == day, Entry.amount_cents), else_=0)),
                    0,
                ),
            ).where(Entry.account_id == account.id, Entry.business_date >= day)
        )
    ).one()
    later, total = int(row[0]), int(row[1])
    end = account.balance_cents - later
    return DayFigures(start_cents=end - total, total_cents=total, end_cents=end)


@dataclass(frozen=True, slots=True)
class PersonDay:
    """What moved on one person's account on one day, by kind."""

    owner_public_id: str
    name: str
    fees_cents: int
    rewards_cents: int
    payouts_cents: int

    @property
    def net_cents(self) -> int:
        return self.rewards_cents - self.fees_cents - self.payouts_cents


async def people_on(session: AsyncSession, day: date) -> list[PersonDay]:
    """Everyone whose account moved on ``day``, with their fees, rewards and payouts."""
    rows = await session.execute(
        sa.select(
            Account.owner_public_id,
            Account.owner_name,
            Account.owner_username,
            Transaction.kind,
            sa.func.sum(Transaction.amount_cents),
        )
        .join(Account, Account.id == Transaction.owner_account_id)
        .where(Transaction.business_date == day)
        .group_by(
            Account.owner_public_id, Account.owner_name, Account.owner_username, Transaction.kind
        )
    )
    names: dict[str, str] = {}
    sums: dict[tuple[str, str], int] = {}
    for owner, name, username, kind, cents in rows.all():
        names[str(owner)] = name or username or str(owner)
        sums[(str(owner), str(kind))] = int(cents)
    people = [
        PersonDay(
            owner_public_id=owner,
            name=name,
            fees_cents=sums.get((owner, domain.Kind.ASSIGN_FEE), 0),
            rewards_cents=sums.get((owner, domain.Kind.REWARD), 0),
            payouts_cents=sums.get((owner, domain.Kind.PAYOUT), 0),
        )
        for owner, name in names.items()
    ]
    return sorted(people, key=lambda p: p.name.lower())


async def earliest_movement(session: AsyncSession) -> date | None:
    """The first business day anything was booked on (the books' first day)."""
    first: date | None = await session.scalar(sa.select(sa.func.min(Entry.business_date)))
    return first


async def earnings_by_day(session: AsyncSession, days: list[date]) -> dict[date, int]:
    """Management earnings of each day: the company account's movements that day, i.e.
    fees charged minus rewards paid (B6). Days without movements earn 0."""
    if not days:
        return {}
    rows = await session.execute(
        sa.select(Entry.business_date, sa.func.sum(Entry.amount_cents))
        .where(
            Entry.account_id == COMPANY_ACCOUNT_ID,
            Entry.business_date >= min(days),
            Entry.business_date <= max(days),
        )
        .group_by(Entry.business_date)
    )
    found = {day: int(cents) for day, cents in rows.all()}
    return {day: found.get(day, 0) for day in days}


async def task_price(session: AsyncSession, task_public_id: str) -> Task | None:
    return await session.scalar(sa.select(Task).where(Task.public_id == task_public_id))


async def people(session: AsyncSession, *, limit: int, offset: int = 0) -> list[Account]:
    result = await session.scalars(
        sa.select(Account)
        .where(Account.kind == "person")
        .order_by(Account.owner_name, Account.id)
        .limit(limit)
        .offset(offset)
    )
    return list(result.all())


async def closed_days(session: AsyncSession, days: list[date]) -> dict[date, ClosedDay]:
    if not days:
        return {}
    rows = await session.scalars(
        sa.select(ClosedDay).where(
            ClosedDay.business_date >= min(days), ClosedDay.business_date <= max(days)
        )
    )
    return {row.business_date: row for row in rows.all()}

"""The read side of billing: balances, audit logs by day, management earnings by day.

Plain functions over a session, shared by the API, the pages and the command line. A
transaction's description is rendered from its stored facts and the task's title as known
now: a fee booked before ``TaskCreated`` arrived still names the task once it has.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ates.platform.sessions import Standing
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
    return Standing(account.owner_role, account.role_at, account.active, account.active_at)


async def day_log(session: AsyncSession, account: Account, day: date) -> list[Movement]:
    rows = await session.execute(
        sa.select(Transaction, Task.title, Task.jira_id)
        .outerjoin(Task, Task.public_id == Transaction.task_public_id)
        .where(Transaction.owner_account_id == account.id, Transaction.business_date == day)
        .order_by(Transaction.id)
        .limit(MAX_LOG)
    )
    movements = []
    for transaction, title, jira_id in rows.all():
        debit = transaction.kind != domain.Kind.REWARD
        label = domain.task_label(title, jira_id, transaction.task_public_id)
        movements.append(
            Movement(
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
                ),
                task_public_id=transaction.task_public_id,
                business_date=transaction.business_date,
                applied_at=transaction.applied_at,
            )
        )
    return movements


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

"""Writing to the books: accounts on first need, prices once, postings exactly once.

Everything here runs inside the caller's unit of work; nothing commits. A posting is one
``transactions`` row plus its ``entries`` (legs), the cached balances moved by the same
amounts, and a ``TransactionApplied`` event in the outbox — all or nothing.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from ates.platform.sql import insert_for
from ates.platform.uow import UnitOfWork
from ates.schemas.billing import TaskPriced, TransactionApplied, as_kind
from ates.services.billing import domain
from ates.services.billing.models import (
    CASH_ACCOUNT_ID,
    COMPANY_ACCOUNT_ID,
    Account,
    Books,
    Entry,
    Task,
    Transaction,
    new_id,
)

SYSTEM_ACCOUNTS = {domain.COMPANY: COMPANY_ACCOUNT_ID, domain.CASH: CASH_ACCOUNT_ID}


def insert_ignoring_duplicates(dialect: str, entity: type[Any]) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` for this database: a row created by a concurrent
    process (two events for one task or person at once) is simply already there."""
    return insert_for(dialect)(entity).on_conflict_do_nothing()


def _insert_ignoring_duplicates(session: AsyncSession, entity: type[Any]) -> Any:
    return insert_ignoring_duplicates(session.get_bind().dialect.name, entity)


async def person_account_id(session: AsyncSession, owner_public_id: str) -> int:
    """The id of the person's account; opened now if no event about them has arrived yet
    (B2). A concurrent opening by another process is simply already there."""
    query = sa.select(Account.id).where(Account.owner_public_id == owner_public_id)
    found = await session.scalar(query)
    if found is not None:
        return found
    await session.execute(
        _insert_ignoring_duplicates(session, Account).values(
            public_id=new_id(),
            kind="person",
            owner_public_id=owner_public_id,
            active=True,
            balance_cents=0,
        )
    )
    return (await session.execute(query)).scalar_one()


async def person_account(session: AsyncSession, owner_public_id: str) -> Account:
    """The person's account as an object, to change what we know of them."""
    account = await session.get(Account, await person_account_id(session, owner_public_id))
    assert account is not None
    return account


@dataclass(frozen=True, slots=True)
class PricedTask:
    """What the ledger needs of a task: its price, and its name if known yet."""

    public_id: str
    price: domain.Price
    title: str | None = None
    jira_id: str | None = None

    @property
    def label(self) -> str:
        return domain.task_label(self.title, self.jira_id, self.public_id)


async def priced_task(
    uow: UnitOfWork, task_public_id: str, rng: random.Random, now: datetime
) -> PricedTask:
    """The task with its price, drawn and published the first time billing hears of it.

    The unique task id makes the price once-only: a redelivered or concurrent event finds
    the row (or loses the insert race) and never draws again (B3).
    """
    session = uow.session
    query = sa.select(Task.assign_fee_cents, Task.reward_cents, Task.title, Task.jira_id).where(
        Task.public_id == task_public_id
    )
    row = (await session.execute(query)).one_or_none()
    if row is None:
        price = domain.draw_price(rng)
        inserted = await session.execute(
            _insert_ignoring_duplicates(session, Task).values(
                public_id=task_public_id,
                assign_fee_cents=price.assign_fee_cents,
                reward_cents=price.reward_cents,
                priced_at=now,
            )
        )
        if inserted.rowcount == 1:  # type: ignore[attr-defined]
            await uow.emit(TaskPriced(task_public_id, price.assign_fee_cents, price.reward_cents))
            return PricedTask(task_public_id, price)
        row = (await session.execute(query)).one()  # another process priced it first
    fee, reward, title, jira_id = row
    return PricedTask(task_public_id, domain.Price(fee, reward), title, jira_id)


async def name_task(
    session: AsyncSession, task_public_id: str, title: str, jira_id: str | None
) -> None:
    await session.execute(
        sa.update(Task)
        .where(Task.public_id == task_public_id)
        .values(title=title, jira_id=jira_id)
        .execution_options(synchronize_session=False)
    )


@dataclass(frozen=True, slots=True)
class BooksState:
    closed_through: date | None
    zone: ZoneInfo

    def day_of(self, moment: datetime) -> date:
        return domain.business_date(moment, self.zone)


Lock = Literal["none", "share", "update"]


async def books(session: AsyncSession, *, lock: Lock = "share") -> BooksState:
    """Where the books stand. A close reads with ``lock="update"``, a booking with
    ``"share"``: no movement lands on a day while that day is being closed (PostgreSQL
    row locks; SQLite runs one writer at a time anyway). Readers take no lock."""
    query = sa.select(Books.closed_through, Books.timezone).where(Books.id == 1)
    if lock != "none":
        query = query.with_for_update(read=lock == "share")
    row = (await session.execute(query)).one()
    return BooksState(closed_through=row.closed_through, zone=ZoneInfo(row.timezone))


async def mark_closed_through(session: AsyncSession, day: date) -> None:
    await session.execute(sa.update(Books).where(Books.id == 1).values(closed_through=day))


async def set_timezone(session: AsyncSession, timezone: str) -> None:
    """Record the business time zone (``ATES_TIMEZONE``) the books count days in."""
    ZoneInfo(timezone)  # refuse an unknown zone before writing it
    await session.execute(
        sa.update(Books).where(Books.id == 1, Books.timezone != timezone).values(timezone=timezone)
    )


async def booking_day(session: AsyncSession, happened_at: datetime) -> tuple[date, date | None]:
    """(the day to book a movement on, the day it happened if that day was closed)."""
    state = await books(session)
    natural = state.day_of(happened_at)
    booked = domain.booking_date(natural, state.closed_through)
    return booked, (natural if booked != natural else None)


async def already_booked(session: AsyncSession, key: str) -> bool:
    found = await session.scalar(
        sa.select(Transaction.id).where(Transaction.idempotency_key == key)
    )
    return found is not None


@dataclass(frozen=True, slots=True)
class Posted:
    id: int
    public_id: str
    owner_balance_cents: int


async def post(
    uow: UnitOfWork,
    posting: domain.Posting,
    *,
    key: str,
    reason: domain.Reason,
    business_date: date,
    booked_late_from: date | None = None,
    task: PricedTask | None = None,
    applied_at: datetime | None = None,
) -> Posted | None:
    """Book ``posting`` once under ``key`` (the causing event's id). None if ``key`` was
    booked before: a redelivery, even through a fresh inbox, changes nothing. The unique
    key decides, so two processes booking one event at once book it once."""
    session = uow.session
    applied_at = applied_at or datetime.now(UTC)
    account_ids = {
        leg.account: SYSTEM_ACCOUNTS.get(leg.account)
        or await person_account_id(session, leg.account)
        for leg in posting.legs
    }
    description = domain.describe(
        reason,
        amount_cents=posting.amount_cents,
        business_date=business_date,
        task=task.label if task else None,
        booked_late_from=booked_late_from,
    )
    public_id = new_id()
    transaction_id = await session.scalar(
        _insert_ignoring_duplicates(session, Transaction)
        .values(
            public_id=public_id,
            idempotency_key=key,
            kind=posting.kind.value,
            reason=reason.value,
            owner_account_id=account_ids[posting.owner],
            amount_cents=posting.amount_cents,
            task_public_id=task.public_id if task else None,
            business_date=business_date,
            booked_late_from=booked_late_from,
            description=description,
            applied_at=applied_at,
        )
        .returning(Transaction.id)
    )
    if transaction_id is None:
        return None
    await session.execute(
        sa.insert(Entry),
        [
            {
                "transaction_id": transaction_id,
                "account_id": account_ids[leg.account],
                "amount_cents": leg.amount_cents,
                "business_date": business_date,
            }
            for leg in posting.legs
        ],
    )
    balances = await _move_balances(session, posting, account_ids)
    owner_balance = balances[account_ids[posting.owner]]
    await uow.emit(
        TransactionApplied(
            transaction_public_id=public_id,
            owner_public_id=posting.owner,
            kind=as_kind(posting.kind),
            debit_cents=posting.debit_cents,
            credit_cents=posting.credit_cents,
            balance_after_cents=owner_balance,
            task_public_id=task.public_id if task else None,
            business_date=business_date.isoformat(),
            applied_at=applied_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            description=description,
        )
    )
    return Posted(transaction_id, public_id, owner_balance)


async def _move_balances(
    session: AsyncSession, posting: domain.Posting, account_ids: dict[str, int]
) -> dict[int, int]:
    """Add each leg to its account's cached balance, in account-id order so that two
    transactions touching the same accounts never wait on each other in a cycle."""
    deltas: dict[int, int] = defaultdict(int)
    for leg in posting.legs:
        deltas[account_ids[leg.account]] += leg.amount_cents
    after: dict[int, int] = {}
    for account_id in sorted(deltas):
        moved = await session.execute(
            sa.update(Account)
            .where(Account.id == account_id)
            .values(balance_cents=Account.balance_cents + deltas[account_id])
            .returning(Account.balance_cents)
            .execution_options(synchronize_session=False)
        )
        after[account_id] = int(moved.scalar_one())
    return after

"""The billing database: accounts, task prices, the ledger, and the closed days.

The ledger is ``transactions`` (one row per movement, keyed for idempotency by the id of
the event that caused it) and ``entries`` (its legs, which sum to zero). Both are
append-only: the migration installs triggers that refuse UPDATE and DELETE on them.
``accounts.balance_cents`` is a cache of the sum of an account's entries, kept in the
same transaction and checked by ``ates billing verify``.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ates.platform.sqltypes import UtcDateTime


class Base(DeclarativeBase):
    pass


def new_id() -> str:
    return str(uuid.uuid4())


# Fixed ids of the two system accounts, inserted by the first migration.
COMPANY_ACCOUNT_ID = 1
CASH_ACCOUNT_ID = 2


class Account(Base):
    """A person's account (opened when auth announces the person, or on first need), or
    one of the two system accounts: the company (fees and rewards) and cash (payouts)."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(16), default="person")  # person | company | cash
    owner_public_id: Mapped[str | None] = mapped_column(String(36), unique=True, nullable=True)
    owner_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    owner_email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    owner_username: Mapped[str | None] = mapped_column(String(150), nullable=True)
    owner_role: Mapped[str | None] = mapped_column(String(32), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # the stamp of the event that set each fact about the person (account events may
    # arrive out of order; see ates.platform.events.ordering)
    profile_stamp: Mapped[str] = mapped_column(String(80), default="", server_default="")
    role_stamp: Mapped[str] = mapped_column(String(80), default="", server_default="")
    active_stamp: Mapped[str] = mapped_column(String(80), default="", server_default="")
    balance_cents: Mapped[int] = mapped_column(BigInteger, default=0)


class Task(Base):
    """Billing's copy of a task and its price, fixed once (unique per task, B3)."""

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    assign_fee_cents: Mapped[int] = mapped_column(Integer)
    reward_cents: Mapped[int] = mapped_column(Integer)
    priced_at: Mapped[datetime] = mapped_column(UtcDateTime)
    title: Mapped[str | None] = mapped_column(String(300), nullable=True)
    jira_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Transaction(Base):
    """One movement of money. Immutable; a mistake is corrected by a new transaction."""

    __tablename__ = "transactions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True, default=new_id)
    # the causing event's id (fees, rewards) or "payout:<day>:<owner>": booked once
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(16))
    owner_account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    task_public_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    business_date: Mapped[date] = mapped_column(Date)
    # the day the movement happened, when that day was already closed (B7)
    booked_late_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    description: Mapped[str] = mapped_column(String(1000))
    applied_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        Index("ix_transactions_owner_day", "owner_account_id", "business_date"),
        # a task is rewarded once, whatever events claim otherwise
        Index(
            "ux_transactions_one_reward_per_task",
            "task_public_id",
            unique=True,
            sqlite_where=text("kind = 'reward'"),
            postgresql_where=text("kind = 'reward'"),
        ),
    )


class Entry(Base):
    """One leg of a transaction: a signed amount on one account, on the booking day."""

    __tablename__ = "entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("transactions.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    business_date: Mapped[date] = mapped_column(Date)

    __table_args__ = (
        Index("ix_entries_account_day", "account_id", "business_date"),
        Index("ix_entries_transaction", "transaction_id"),
    )


class ClosedDay(Base):
    """A business day that was closed; the primary key makes a day close once."""

    __tablename__ = "closed_days"

    business_date: Mapped[date] = mapped_column(Date, primary_key=True)
    closed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    payouts: Mapped[int] = mapped_column(Integer)
    paid_cents: Mapped[int] = mapped_column(BigInteger)


class Books(Base):
    """One row: the books are closed through ``closed_through``, and days are counted in
    the business time zone ``timezone`` (written from ``ATES_TIMEZONE`` at start-up, so
    every process and command dates movements alike).

    Closing a day locks this row (``FOR UPDATE``); booking a movement reads it with a
    shared lock, so no movement lands on a day while that day is being closed.
    """

    __tablename__ = "books"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    closed_through: Mapped[date | None] = mapped_column(Date, nullable=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")

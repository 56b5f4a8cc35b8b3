"""The projections of analytics: tables filled from events only, shaped for the dashboard.

Nothing here is a source of truth; ``ates replay analytics`` drops every row and rebuilds
them from the broker's log. Aggregates are kept ready (per business day, per 15-minute
bucket) so that no dashboard query scans all tasks.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ates.platform.sqltypes import UtcDateTime


class Base(DeclarativeBase):
    pass


class Person(Base):
    """A person as the account events describe them (latest fact per group of fields)."""

    __tablename__ = "people"

    public_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str | None] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(254))
    full_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    profile_stamp: Mapped[str] = mapped_column(String(80), default="")
    role_stamp: Mapped[str] = mapped_column(String(80), default="")
    active_stamp: Mapped[str] = mapped_column(String(80), default="")


class Balance(Base):
    """A person's balance after their latest movement (by ``applied_at``), whatever order
    the movements arrived in."""

    __tablename__ = "balances"

    owner_public_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    balance_cents: Mapped[int] = mapped_column(BigInteger, index=True)
    stamp: Mapped[str] = mapped_column(String(80))


class Task(Base):
    """What analytics knows of a task; each event fills its own columns."""

    __tablename__ = "tasks"

    public_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    title: Mapped[str | None] = mapped_column(String(300))
    jira_id: Mapped[str | None] = mapped_column(String(64))
    assign_fee_cents: Mapped[int | None] = mapped_column(BigInteger)
    reward_cents: Mapped[int | None] = mapped_column(BigInteger)
    assignments: Mapped[int] = mapped_column(Integer, default=0)
    assignee_public_id: Mapped[str | None] = mapped_column(String(36))
    assignee_stamp: Mapped[str] = mapped_column(String(80), default="")
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    completed_by: Mapped[str | None] = mapped_column(String(36))


class DailyEarnings(Base):
    """Money moved on one business date (billing's ``business_date`` of each movement)."""

    __tablename__ = "earnings_by_day"

    business_date: Mapped[date] = mapped_column(Date, primary_key=True)
    fees_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    rewards_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    payouts_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    fee_count: Mapped[int] = mapped_column(Integer, default=0)
    reward_count: Mapped[int] = mapped_column(Integer, default=0)


class TopCompletion(Base):
    """The most expensive completed task of one 15-minute UTC bucket (see ``domain``)."""

    __tablename__ = "top_completions"

    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    task_public_id: Mapped[str] = mapped_column(String(36))
    reward_cents: Mapped[int] = mapped_column(BigInteger)
    completed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ClosedDay(Base):
    """A business day billing closed (payouts done)."""

    __tablename__ = "closed_days"

    business_date: Mapped[date] = mapped_column(Date, primary_key=True)
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime)


PROJECTIONS = (Person, Balance, Task, DailyEarnings, TopCompletion, ClosedDay)

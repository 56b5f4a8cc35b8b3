"""The notifications service's tables: copies of people and tasks (to name them), and the
notices waiting to be sent."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Index, Integer, String, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ates.platform.sqltypes import UtcDateTime


class Base(DeclarativeBase):
    pass


class Person(Base):
    """Who a notice goes to, kept from account events (``profile_stamp``: the stamp of the
    event that set the profile, so an older event never overwrites a newer one; see
    ``ates.platform.events.ordering``)."""

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    username: Mapped[str | None] = mapped_column(String(64), nullable=True)
    full_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    profile_stamp: Mapped[str] = mapped_column(String(80), default="", server_default="")


class TaskCopy(Base):
    """What a notice says about a task, kept from ``TaskCreated`` (v1 upcast to v2)."""

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    jira_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Notice(Base):
    """Something to tell a person, written in the consuming transaction and sent by the
    sender job once we know who the person (and the task) is — so events arriving in any
    order still give a message naming both.

    While a sender round holds it, ``claimed_by``/``claimed_at`` name the round and start
    its lease; ``attempts`` counts claims, and a failed one sets ``last_error`` and
    ``next_try_at`` (see ``sender``)."""

    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    person_public_id: Mapped[str] = mapped_column(String(36))
    task_public_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    amount_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    business_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_try_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)

    __table_args__ = (
        Index(
            "ix_notices_unsent",
            "id",
            postgresql_where=text("sent_at IS NULL"),
            sqlite_where=text("sent_at IS NULL"),
        ),
    )

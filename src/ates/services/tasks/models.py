"""The tasks service's tables: its own copy of people, and the tasks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ates.platform.sqltypes import UtcDateTime


class Base(DeclarativeBase):
    pass


class Person(Base):
    """The tasks service's own copy of a person, kept from account events.

    Each fact carries the time of the event that set it (``*_at``), so a late, older
    event cannot undo a newer one (see ``is_newer``). A person we heard of only
    through a role change or deactivation is kept with the facts we have.
    """

    __tablename__ = "people"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    username: Mapped[str | None] = mapped_column(String(64), nullable=True)
    full_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    role: Mapped[str | None] = mapped_column(String(16), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    profile_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    role_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    active_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    __table_args__ = (Index("ix_people_role_active", "role", "active"),)


class Task(Base):
    __tablename__ = "tasks"

    # the integer id orders tasks for keyset paging (shuffle batches, lists); the public
    # id is what leaves the service
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    jira_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(8))
    assignee_public_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    __table_args__ = (
        Index("ix_tasks_status_id", "status", "id"),
        Index("ix_tasks_assignee_status_id", "assignee_public_id", "status", "id"),
    )

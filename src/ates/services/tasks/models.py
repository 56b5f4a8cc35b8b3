"""The tasks service's tables: its own copy of people, the tasks, and each task's
assignment history."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ates.platform.sqltypes import UtcDateTime


class Base(DeclarativeBase):
    pass


class Person(Base):
    """The tasks service's own copy of a person, kept from account events.

    Each fact carries the stamp of the event that set it (``*_stamp``), so a late, older
    event cannot undo a newer one (see ``ates.platform.events.ordering``). A person we heard of only
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
    profile_stamp: Mapped[str] = mapped_column(String(80), default="", server_default="")
    role_stamp: Mapped[str] = mapped_column(String(80), default="", server_default="")
    active_stamp: Mapped[str] = mapped_column(String(80), default="", server_default="")

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
    # who asked for it (None: created before the tasks service recorded it)
    created_by_public_id: Mapped[str | None] = mapped_column(String(36), nullable=True)

    __table_args__ = (
        Index("ix_tasks_status_id", "status", "id"),
        Index("ix_tasks_assignee_status_id", "assignee_public_id", "status", "id"),
        Index("ix_tasks_created_by_id", "created_by_public_id", "id"),
    )


class AssignmentRecord(Base):
    """One assignment of a task, as its ``TaskAssigned`` said it: written in the same
    transaction as the event by the create and shuffle use cases, so the task page's
    history is exactly what billing charged for. Append-only."""

    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_public_id: Mapped[str] = mapped_column(String(36))
    assignee_public_id: Mapped[str] = mapped_column(String(36))
    previous_assignee_public_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    reason: Mapped[str] = mapped_column(String(16))  # created | shuffle | recorded
    shuffle_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    assigned_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_assignments_task", "task_public_id", "id"),)

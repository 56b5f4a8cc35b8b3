"""What the notifications service says, and to whom (T7, B7): pure, no I/O.

Nothing is really sent: each message becomes one line on stdout (see ``notifier``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Final

from ates.platform.money import format_cents

EMAIL: Final = "email"
SLACK: Final = "slack"
SMS: Final = "sms"
CHANNELS = (EMAIL, SLACK, SMS)

TASK_ASSIGNED: Final = "task_assigned"
PAYOUT: Final = "payout"


@dataclass(frozen=True, slots=True)
class Message:
    channel: str
    recipient: str
    text: str

    def line(self) -> str:
        return f"[{self.channel}] to {self.recipient}: {self.text}"


@dataclass(frozen=True, slots=True)
class Recipient:
    """Who a message goes to; a person we never heard of is named by their public id."""

    public_id: str
    full_name: str | None = None
    username: str | None = None
    email: str | None = None

    @property
    def name(self) -> str:
        return self.full_name or self.username or self.public_id

    def address(self, channel: str) -> str:
        if channel == EMAIL and self.email:
            return f"{self.name} <{self.email}>"
        if channel == SLACK and self.username:
            return f"@{self.username} ({self.name})"
        return self.name


@dataclass(frozen=True, slots=True)
class TaskRef:
    public_id: str
    title: str | None = None
    jira_id: str | None = None

    def describe(self) -> str:
        if self.title is None:
            return f"task {self.public_id}"
        return f"“{self.title}”" + (f" ({self.jira_id})" if self.jira_id else "")


def assignment_messages(person: Recipient, task: TaskRef, reason: str) -> list[Message]:
    """T7: one message per channel, naming the person and the task."""
    why = "reassigned to you by a shuffle" if reason == "shuffle" else "assigned to you"
    text = f"{person.name}, the task {task.describe()} is {why}."
    return [Message(channel, person.address(channel), text) for channel in CHANNELS]


def payout_messages(
    person: Recipient,
    amount_cents: int,
    day: date,
    *,
    show_day: Callable[[date], str] = date.isoformat,
) -> list[Message]:
    """B7: the day's payout, by email (``show_day`` writes the day: ISO when printed,
    the pages' format on a page)."""
    text = f"{person.name}, you were paid {format_cents(amount_cents)} for {show_day(day)}."
    return [Message(EMAIL, person.address(EMAIL), text)]

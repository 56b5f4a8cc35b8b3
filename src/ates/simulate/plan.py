"""What a simulation is asked to do, and what it did."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any


class SimulationError(Exception):
    """The simulation cannot go on; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Plan:
    workers: int = 5
    tasks: int = 40
    shuffles: int = 1
    complete_ratio: float = 0.7
    close_day: bool = False
    seed: int | None = None
    wait_seconds: float = 60.0  # for events to reach billing and analytics


@dataclass(frozen=True, slots=True)
class Login:
    username: str
    role: str
    password: str


@dataclass
class Summary:
    business_date: date | None = None
    workers: list[Login] = field(default_factory=list)
    tasks: int = 0
    shuffles: int = 0
    reassigned: int = 0
    completed: int = 0
    not_completed_unknown_assignee: int = 0
    fees_cents: int = 0  # booked by billing for this simulation's tasks
    rewards_cents: int = 0
    booked_on: set[date] = field(default_factory=set)
    closed: dict[str, Any] | None = None
    billing_earnings_cents: int | None = None
    analytics_earnings_cents: int | None = None

"""What a service's copy of people says about someone: the pages honour it at once (a
role changed or an account deactivated after the sign-in, see ``sessions``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True, slots=True)
class Standing:
    """What a service's copy of people says about someone, and since when (the time of
    the account event that said it; None when not known)."""

    role: str | None
    role_at: datetime | None
    active: bool
    active_at: datetime | None


StandingOf = Callable[[AsyncSession, str], Awaitable[Standing | None]]

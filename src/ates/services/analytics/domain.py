"""The rules of analytics, pure: periods, what "most expensive" means, how facts that
arrive out of order are merged, and the labels the dashboard speaks in.

Projections are kept in UTC. The business time zone only turns a chosen date into a UTC
interval (here) and a UTC instant back into a local date (at the edges). Completions are
aggregated per 15-minute UTC bucket: every time zone in use today is a whole number of
quarter hours away from UTC, so any local day, ISO week or month is an exact run of
buckets, in any zone and across DST changes, and changing ``ATES_TIMEZONE`` needs no rebuild.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ates.platform.events.ordering import NEVER, is_newer

BUCKET_SECONDS = 15 * 60

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


# --- time -------------------------------------------------------------------------------


def parse_instant(text: str) -> datetime:
    """An RFC 3339 timestamp from an event, as an aware UTC datetime."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {text!r}")
    return moment.astimezone(UTC)


def bucket_of(moment: datetime) -> int:
    """The 15-minute UTC bucket an instant falls in."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: analytics keeps time zone-aware UTC")
    return int(moment.timestamp()) // BUCKET_SECONDS


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant a local day starts (where midnight is skipped by DST, the instant
    the day really starts)."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def local_date(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


@dataclass(frozen=True, slots=True)
class Period:
    """Local days ``first`` to ``last``, both included."""

    first: date
    last: date

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValueError("a period ends on or after its first day")

    def utc_bounds(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """The half-open UTC interval ``[start, end)`` the period covers."""
        return local_midnight(self.first, zone), local_midnight(self.last + timedelta(days=1), zone)

    def buckets(self, zone: ZoneInfo) -> tuple[int, int]:
        """The half-open range of buckets ``[lo, hi)`` the period covers."""
        start, end = self.utc_bounds(zone)
        return bucket_of(start), bucket_of(end)

    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    @property
    def length(self) -> int:
        return (self.last - self.first).days + 1


def day_period(day: date) -> Period:
    return Period(day, day)


def week_period(day: date) -> Period:
    """The ISO week (Monday to Sunday) holding ``day``."""
    monday = day - timedelta(days=day.weekday())
    return Period(monday, monday + timedelta(days=6))


def month_period(day: date) -> Period:
    first = day.replace(day=1)
    next_month = (first + timedelta(days=32)).replace(day=1)
    return Period(first, next_month - timedelta(days=1))


# --- the most expensive task ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Completion:
    """A task that is both completed and priced: a candidate for "most expensive"."""

    task_public_id: str
    reward_cents: int
    completed_at: datetime

    def rank(self) -> tuple[int, datetime, str]:
        """Smaller ranks first: the highest reward; on a tie the earlier completion, then
        the smaller id, so the answer never depends on the order events arrived in."""
        return (-self.reward_cents, self.completed_at, self.task_public_id)


def most_expensive(completions: Iterable[Completion]) -> Completion | None:
    return min(completions, key=Completion.rank, default=None)


# --- money ------------------------------------------------------------------------------


def earnings_effect(kind: str, debit_cents: int, credit_cents: int) -> tuple[int, int]:
    """What one account movement adds to the day's (fees charged, rewards paid).

    Amounts are from the person's side: a fee debits the worker (the company earns it), a
    reward credits the worker (the company pays it). Payouts move money the company
    already owed and change neither.
    """
    if kind == "assign_fee":
        return debit_cents - credit_cents, 0
    if kind == "reward":
        return 0, credit_cents - debit_cents
    return 0, 0


def management_earnings(fees_cents: int, rewards_cents: int) -> int:
    """DESIGN B6: fees charged that day minus rewards paid that day."""
    return fees_cents - rewards_cents


# --- facts that arrive out of order -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class PersonFacts:
    """What one account event says about a person; ``None`` = not said by this event."""

    stamp: str
    username: str | None = None
    email: str | None = None
    full_name: str | None = None
    role: str | None = None
    active: bool | None = None


@dataclass(frozen=True, slots=True)
class PersonState:
    username: str | None = None
    email: str | None = None
    full_name: str | None = None
    role: str | None = None
    active: bool = True
    profile_stamp: str = NEVER
    role_stamp: str = NEVER
    active_stamp: str = NEVER


def merge_person(state: PersonState, facts: PersonFacts) -> PersonState:
    """Each group of fields (profile, role, active) keeps the value of its latest fact,
    by the platform's one rule for copies of people (``is_newer``)."""
    if facts.username is not None and is_newer(facts.stamp, state.profile_stamp):
        state = replace(
            state,
            username=facts.username,
            email=facts.email,
            full_name=facts.full_name,
            profile_stamp=facts.stamp,
        )
    if facts.role is not None and is_newer(facts.stamp, state.role_stamp):
        state = replace(state, role=facts.role, role_stamp=facts.stamp)
    if facts.active is not None and is_newer(facts.stamp, state.active_stamp):
        state = replace(state, active=facts.active, active_stamp=facts.stamp)
    return state


def counts_as_worker(role: str | None) -> bool:
    """Whose negative balance the dashboard counts: workers, and people billing knows
    before auth's event about them arrived (only workers are ever charged a fee)."""
    return role is None or role == "worker"


# --- labels (DESIGN A3: "03.03 - most expensive task - 28 $ ... 01-03 March - 38 $") -----

DASH = "\u2013"  # the en dash of "01\u201303 March"


def day_label(day: date) -> str:
    return f"{day:%d.%m}"


def period_label(period: Period) -> str:
    first, last = period.first, period.last

    def name(day: date, with_year: bool = False) -> str:
        year = f" {day.year}" if with_year else ""
        return f"{day.day:02d} {MONTHS[day.month - 1]}{year}"

    if first == last:
        return name(first)
    if (first.year, first.month) == (last.year, last.month):
        return f"{first.day:02d}{DASH}{name(last)}"
    other_year = first.year != last.year
    return f"{name(first, other_year)} {DASH} {name(last, other_year)}"


def whole_dollars(cents: int) -> str:
    """``2800`` -> ``"28 $"``, ``2850`` -> ``"28.50 $"`` (the dashboard's short form)."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole} $" if part == 0 else f"{sign}{whole}.{part:02d} $"

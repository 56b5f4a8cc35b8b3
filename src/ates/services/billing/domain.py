"""The rules of billing, pure: prices, postings, business days, payouts, descriptions.

Nothing here touches a database, the broker, the web or the settings; the adapters
(``ledger``, ``booking``, ``consumers``, ``commands``) call these functions and store what
they return.

Sign convention: every leg's ``amount_cents`` is seen from the account holder's side, so a
person's balance is the plain sum of their legs. A fee is ``-fee`` for the person and
``+fee`` for the company; a reward the reverse; a payout is ``-amount`` for the person and
``+amount`` for the cash account (money that left the company). Every posting sums to 0.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from enum import StrEnum

from ates.platform.money import format_cents

FEE_RANGE = (1000, 2000)  # cents, inclusive: 10.00 .. 20.00 $
REWARD_RANGE = (2000, 4000)  # cents, inclusive: 20.00 .. 40.00 $

# The two counterparties of every person's movements, as ledger account keys.
COMPANY = "company"
CASH = "cash"


class LedgerError(ValueError):
    """A posting that would break the ledger (unbalanced, non-integer, not positive)."""


class DayRuleError(ValueError):
    """A day that cannot be closed (in the future)."""


class Kind(StrEnum):
    """What a transaction is (the ``kind`` of ``TransactionApplied``)."""

    ASSIGN_FEE = "assign_fee"
    REWARD = "reward"
    PAYOUT = "payout"


class Reason(StrEnum):
    """Why money moved, for the audit log (B5)."""

    ASSIGNED = "assigned"
    SHUFFLED = "shuffle"
    COMPLETED = "completed"
    PAID_OUT = "paid_out"


# --- prices -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Price:
    assign_fee_cents: int
    reward_cents: int

    def __post_init__(self) -> None:
        for name, bounds in (("assign_fee_cents", FEE_RANGE), ("reward_cents", REWARD_RANGE)):
            value = check_amount(getattr(self, name), name)
            if not bounds[0] <= value <= bounds[1]:
                raise LedgerError(f"{name} must be within {bounds[0]}..{bounds[1]}, got {value}")


def draw_price(rng: random.Random) -> Price:
    """A task's price: fee and reward uniform over whole cents in their ranges (B3)."""
    return Price(
        assign_fee_cents=rng.randint(*FEE_RANGE),
        reward_cents=rng.randint(*REWARD_RANGE),
    )


# --- postings ---------------------------------------------------------------------------


def check_amount(value: object, name: str = "amount_cents") -> int:
    """An amount of money must be a positive whole number of cents."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise LedgerError(f"{name} must be an integer number of cents, got {value!r}")
    if value <= 0:
        raise LedgerError(f"{name} must be positive, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class Leg:
    account: str  # COMPANY, CASH, or a person's public id
    amount_cents: int  # signed, from the account holder's side


@dataclass(frozen=True, slots=True)
class Posting:
    """One transaction: the person whose account moved, and legs that sum to zero."""

    kind: Kind
    owner: str
    amount_cents: int
    legs: tuple[Leg, ...]

    def __post_init__(self) -> None:
        check_amount(self.amount_cents)
        check_balanced(self.legs)

    @property
    def owner_delta(self) -> int:
        return sum(leg.amount_cents for leg in self.legs if leg.account == self.owner)

    @property
    def debit_cents(self) -> int:
        """Money taken from the owner (``TransactionApplied.debit_cents``)."""
        return max(0, -self.owner_delta)

    @property
    def credit_cents(self) -> int:
        """Money given to the owner (``TransactionApplied.credit_cents``)."""
        return max(0, self.owner_delta)


def check_balanced(legs: Sequence[Leg]) -> None:
    if len(legs) < 2:
        raise LedgerError("a transaction needs at least two legs")
    for leg in legs:
        if isinstance(leg.amount_cents, bool) or not isinstance(leg.amount_cents, int):
            raise LedgerError(f"leg amount must be integer cents, got {leg.amount_cents!r}")
        if leg.amount_cents == 0:
            raise LedgerError("a leg of zero moves nothing")
    total = sum(leg.amount_cents for leg in legs)
    if total != 0:
        raise LedgerError(f"legs must sum to zero, they sum to {total}")


def fee_posting(person: str, price: Price) -> Posting:
    fee = price.assign_fee_cents
    return Posting(Kind.ASSIGN_FEE, person, fee, (Leg(person, -fee), Leg(COMPANY, fee)))


def reward_posting(person: str, price: Price) -> Posting:
    reward = price.reward_cents
    return Posting(Kind.REWARD, person, reward, (Leg(person, reward), Leg(COMPANY, -reward)))


def payout_posting(person: str, amount_cents: int) -> Posting:
    return Posting(
        Kind.PAYOUT, person, amount_cents, (Leg(person, -amount_cents), Leg(CASH, amount_cents))
    )


def payout_due(balance_through_day: int) -> int:
    """A positive balance is paid out in full; a negative one carries over (B7)."""
    return max(0, balance_through_day)


# --- business days ----------------------------------------------------------------------


def business_date(moment: datetime, zone: tzinfo) -> date:
    """The business day a moment belongs to: midnight to midnight in ``zone``."""
    if moment.tzinfo is None:
        raise ValueError("a moment must carry a time zone")
    return moment.astimezone(zone).date()


def booking_date(natural: date, closed_through: date | None) -> date:
    """Where a movement is booked: its own day, or the first open day if that is closed.

    Days are closed in order, so every day up to ``closed_through`` is closed and the
    first open day is the one after it (B7).
    """
    if closed_through is None or natural > closed_through:
        return natural
    return closed_through + timedelta(days=1)


def days_to_close(
    target: date, *, today: date, closed_through: date | None, earliest_open: date | None
) -> list[date]:
    """The days a close of ``target`` closes, oldest first ([] if already closed).

    Days close in order: a payout is the balance of every movement up to its day, so an
    older day closed after a newer one would pay the same money twice. Closing ``target``
    therefore also closes every still-open day before it that holds movements.
    """
    if target > today:
        raise DayRuleError(
            f"{target.isoformat()} is in the future (today is {today.isoformat()}); "
            "only today or a past day can be closed"
        )
    if closed_through is not None and target <= closed_through:
        return []
    if closed_through is not None:
        first = closed_through + timedelta(days=1)
    else:
        first = min(earliest_open or target, target)
    return [first + timedelta(days=n) for n in range((target - first).days + 1)]


def first_closable(
    *, closed_through: date | None, earliest_movement: date | None, today: date
) -> date | None:
    """The first day a close would close: the day after the last closed one, else the
    first day with movements, else today; None when every day through today is closed."""
    if closed_through is not None:
        first = closed_through + timedelta(days=1)
    else:
        first = min(earliest_movement or today, today)
    return first if first <= today else None


def day_range(last: date, days: int) -> list[date]:
    """``days`` dates ending with ``last``, newest first (for dashboards by day)."""
    return [last - timedelta(days=n) for n in range(days)]


# --- audit log --------------------------------------------------------------------------


def task_label(title: str | None, jira_id: str | None, task_public_id: str | None) -> str:
    """``"[POPUG-42] Sharpen the beak"``, or the task id while its title is unknown."""
    if title is None:
        return f"task {task_public_id} (title not received yet)"
    return f"[{jira_id}] {title}" if jira_id else title


def describe(
    reason: Reason,
    *,
    amount_cents: int,
    business_date: date,
    task: str | None = None,
    booked_late_from: date | None = None,
    show_day: Callable[[date], str] = date.isoformat,
) -> str:
    """A readable line naming the task and why money moved (B5); ``show_day`` writes its
    days (ISO in events and the API, the pages' format on pages)."""
    money = format_cents(amount_cents)
    match reason:
        case Reason.ASSIGNED:
            text = f"assigned: {task}, fee {money}"
        case Reason.SHUFFLED:
            text = f"reassigned by shuffle: {task}, fee {money}"
        case Reason.COMPLETED:
            text = f"completed: {task}, reward {money}"
        case Reason.PAID_OUT:
            text = f"paid out {money} for {show_day(business_date)}"
    if booked_late_from is not None:
        text += (
            f" (happened on {show_day(booked_late_from)}, a day already closed; "
            f"booked on {show_day(business_date)})"
        )
    return text


def management_earnings(fees_cents: int, rewards_cents: int) -> int:
    """B6: fees charged minus rewards paid (the course's ``-(sum(rewards) + sum(-fees))``)."""
    return fees_cents - rewards_cents

"""The typed payloads of the ``billing`` domain, one class per schema version in
``billing/<EventName>/<version>.json`` (see ``ates.platform.events.payload``).

v2 of ``TransactionApplied`` and ``PayoutMade`` only bounds the amounts: the same fields
as v1, a class each all the same, so that every registered version has its type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal, get_args

from ates.platform.events.payload import Payload

Kind = Literal["assign_fee", "reward", "payout"]
KINDS: tuple[Kind, ...] = get_args(Kind)


def as_kind(value: str) -> Kind:
    """A transaction's kind as the payloads' type; ``ValueError`` if it names none."""
    for kind in KINDS:
        if value == kind:
            return kind
    raise ValueError(f"not a transaction kind: {value!r}")


@dataclass(frozen=True, slots=True)
class TaskPriced(Payload):
    event_name: ClassVar[str] = "TaskPriced"
    event_version: ClassVar[int] = 1

    task_public_id: str
    assign_fee_cents: int
    reward_cents: int


@dataclass(frozen=True, slots=True)
class TransactionApplied(Payload):
    event_name: ClassVar[str] = "TransactionApplied"
    event_version: ClassVar[int] = 2

    transaction_public_id: str
    owner_public_id: str
    kind: Kind
    debit_cents: int
    credit_cents: int
    balance_after_cents: int
    task_public_id: str | None
    business_date: str  # YYYY-MM-DD
    applied_at: str  # RFC 3339 date-time
    description: str | None = None


@dataclass(frozen=True, slots=True)
class TransactionAppliedV1(Payload):
    event_name: ClassVar[str] = "TransactionApplied"
    event_version: ClassVar[int] = 1

    transaction_public_id: str
    owner_public_id: str
    kind: Kind
    debit_cents: int
    credit_cents: int
    balance_after_cents: int
    task_public_id: str | None
    business_date: str
    applied_at: str
    description: str | None = None


@dataclass(frozen=True, slots=True)
class PayoutMade(Payload):
    event_name: ClassVar[str] = "PayoutMade"
    event_version: ClassVar[int] = 2

    owner_public_id: str
    amount_cents: int
    business_date: str  # YYYY-MM-DD


@dataclass(frozen=True, slots=True)
class PayoutMadeV1(Payload):
    event_name: ClassVar[str] = "PayoutMade"
    event_version: ClassVar[int] = 1

    owner_public_id: str
    amount_cents: int
    business_date: str


@dataclass(frozen=True, slots=True)
class DayClosed(Payload):
    event_name: ClassVar[str] = "DayClosed"
    event_version: ClassVar[int] = 1

    business_date: str  # YYYY-MM-DD


PAYLOADS: tuple[type[Payload], ...] = (
    TaskPriced,
    TransactionApplied,
    TransactionAppliedV1,
    PayoutMade,
    PayoutMadeV1,
    DayClosed,
)

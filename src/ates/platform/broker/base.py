"""The broker port: what the platform needs from a message broker, and nothing more.

Adapters (``nats``, ``rabbitmq``) implement it; one contract suite
(``tests/integration/broker_contract.py``) runs against each. Dead-lettering, dedup and
retry policy live in the platform (``ates.platform.consumer``), not in adapters: an
adapter only moves bytes, reports how many times a message was delivered, and turns the
consumer's :class:`Outcome` into an ack or a delayed redelivery.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass


class BrokerUnavailable(Exception):
    """The broker did not confirm a publish; the caller keeps the messages and retries."""


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    event_id: str  # also the broker's dedup id
    domain: str
    event_name: str
    body: bytes

    @property
    def subject(self) -> str:
        return subject_for(self.domain, self.event_name)


@dataclass(frozen=True, slots=True)
class Delivery:
    body: bytes
    subject: str
    attempt: int  # 1 on the first delivery
    position: int | None = None  # position in the domain's log, where the broker has one


@dataclass(frozen=True, slots=True)
class Ack:
    """Done with this message (applied, skipped as a duplicate, or dead-lettered)."""


@dataclass(frozen=True, slots=True)
class Retry:
    """Deliver again after ``delay`` seconds."""

    delay: float


Outcome = Ack | Retry
DeliveryHandler = Callable[[Delivery], Awaitable[Outcome]]


def subject_for(domain: str, event_name: str) -> str:
    return f"{domain}.{event_name}"


class Broker(ABC):
    """One connection to a broker, shared by a process's relay and consumers."""

    url: str

    @abstractmethod
    async def connect(self) -> None:
        """Connect (raises :class:`BrokerUnavailable` if the broker cannot be reached)."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def ensure_streams(self, domains: Iterable[str]) -> None:
        """Create the durable log of each producing domain if missing (idempotent)."""

    @abstractmethod
    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        """Publish and wait until the broker confirmed every message, or raise
        :class:`BrokerUnavailable`. Publishing the same ``event_id`` twice may deliver it
        twice; consumers dedup through their inbox."""

    @abstractmethod
    async def consume(
        self,
        group: str,
        domain: str,
        event_names: Sequence[str],
        handler: DeliveryHandler,
    ) -> None:
        """Deliver the domain's events of ``event_names`` to ``handler``, one at a time,
        until cancelled. ``group`` is a durable position: a process that restarts resumes
        where the group stood, and several processes of one group share the work. A new
        group starts at the beginning of the retained log. Survives broker restarts."""

    @abstractmethod
    async def delete_group(self, group: str, domain: str) -> None:
        """Forget a group's position (for replay)."""

    @abstractmethod
    async def log_size(self, domain: str) -> int:
        """How many messages the domain's retained log holds (for replay progress)."""

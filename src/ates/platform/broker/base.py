"""The broker port: what the platform needs from a message broker, and nothing more.

Adapters (``nats``, ``rabbitmq``, ``kafka``) implement it; one contract suite
(``tests/integration/broker_contract.py``) runs against each. Dead-lettering, dedup and
retry policy live in the platform (``ates.platform.consumer``), not in adapters: an
adapter only moves bytes, reports how many times a message was delivered, and turns the
consumer's :class:`Outcome` for each message into an ack or a delayed redelivery.

Consuming is in batches: the adapter hands the handler up to ``batch_size`` deliveries
that are waiting *now* (it never holds a batch back to fill it), the handler applies them
in one database transaction and answers one outcome per delivery, and only then does the
adapter acknowledge. A crash between the handler's commit and the acks redelivers the
batch; the consumer's inbox skips what was applied.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import structlog

log = structlog.get_logger(__name__)


class BrokerUnavailable(Exception):
    """The broker did not confirm a publish; the caller keeps the messages and retries."""


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    event_id: str  # also the broker's dedup id
    domain: str
    event_name: str
    body: bytes
    # The aggregate the event is about (a task's or a person's id): a broker that
    # partitions its log (Kafka) keeps one key's events in one partition, in order.
    key: str | None = None

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
# Applies a batch and answers one outcome per delivery, in the order given.
BatchHandler = Callable[[Sequence[Delivery]], Awaitable[Sequence[Outcome]]]


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
        event_names: Sequence[str] | None,
        handler: BatchHandler,
        *,
        batch_size: int = 64,
    ) -> None:
        """Deliver the domain's events of ``event_names`` (None: every message of the
        domain, whatever its name) to ``handler`` in batches of at most ``batch_size``
        (whatever is waiting, at least one), until cancelled.

        The adapter acts on each outcome only after ``handler`` returned: ``Ack`` is
        acknowledged, ``Retry(delay)`` is delivered again after about ``delay`` seconds
        with ``attempt`` one higher, without holding back the other messages. If the
        handler raises, nothing of the batch is acknowledged and all of it comes again.

        ``group`` is a durable position: a process that restarts resumes where the group
        stood, and several processes of one group share the work. A new group starts at
        the beginning of the retained log. Survives broker restarts."""

    @abstractmethod
    async def delete_group(self, group: str, domain: str) -> None:
        """Forget a group's position (for a rebuild)."""

    @abstractmethod
    async def log_size(self, domain: str) -> int:
        """How many messages the domain's retained log holds (for rebuild progress)."""

    @abstractmethod
    async def lag(self, group: str, domain: str) -> int | None:
        """How many of the domain's messages for ``group`` the group has not yet
        acknowledged: the broker's position minus the group's (for metrics and status).
        None if the broker does not know the group (not created yet)."""


async def consume_in_sessions(
    session: Callable[[], Awaitable[None]],
    *,
    lost: tuple[type[BaseException], ...],
    delay: float,
    group: str,
    domain: str,
) -> None:
    """The loop every adapter's ``consume`` runs: one consuming session after another
    until cancelled. A session binds to the broker and delivers batches until its
    connection, channel or group membership is gone; it then raises one of ``lost``
    (logged; the next session starts after ``delay`` seconds) or returns (the next starts
    at once, so a session returns only when something changed: NATS's client reconnected).
    Any other error is a bug and ends ``consume``."""
    while True:
        stop_if_cancelled()
        try:
            await session()
        except asyncio.CancelledError:
            raise
        except lost as error:
            log.warning("broker.consume_error", group=group, domain=domain, error=repr(error))
            await asyncio.sleep(delay)


def stop_if_cancelled() -> None:
    """Raise if this task was asked to stop. A cancellation can be swallowed on its way
    through a client library (Python 3.11's ``asyncio.wait_for`` drops it when what it
    waits for finishes at the same moment, as nats-py's fetch does): the loop would go on,
    and a service stopping would wait for it forever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError

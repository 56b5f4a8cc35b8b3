"""The RabbitMQ objects aTES uses: their names and arguments, in one place.

For a producing domain ``D`` (``accounts``, ``tasks``, ``billing``) and a consumer group
``G`` (a service, or a service's rebuild generation):

- ``ates.D`` — durable topic exchange; routing key = subject ``D.EventName``.
- ``ates.D.log`` — stream queue bound with ``#``: the retained history of the domain,
  read to fill a new group's queue (rebuild) and never consumed otherwise.
- ``ates.D.G`` — the group's quorum queue, bound to the subjects the group handles (or
  to ``D.#``, every subject: the platform's consumers take them all). The
  queue *is* the group's position: processes of one service compete on it.
- ``ates.D.G.retry.<ms>`` — a delayed-retry quorum queue per delay: messages wait
  ``<ms>`` (queue TTL, so they expire in order) and are dead-lettered back to ``ates.D.G``.
- ``ates.D.G.parked`` — where RabbitMQ itself dead-letters a message returned more than
  ``GROUP_DELIVERY_LIMIT`` times (a process that dies on it each time). Nothing reads it
  automatically; operators inspect it (docs/operations.md).
- ``ates.D.G.filling`` — an empty durable queue that exists while the group's queue is
  being filled from the stream; if a process dies half-way, the next one starts again.
- ``ates.D.G.setup`` — an exclusive queue used as a lock, so one process of a group
  sets the group up while the others wait.
"""

from __future__ import annotations

from typing import Any

# Headers the adapter reads and writes (x-delivery-count is RabbitMQ's own).
ATTEMPT_HEADER = "x-ates-attempt"  # deliveries before this copy was scheduled for retry
MARKER_HEADER = "x-ates-marker"  # a marker the adapter appended to a stream
DELIVERY_COUNT_HEADER = "x-delivery-count"

# Headers dropped when a message is copied (they describe the old copy's journey).
TRANSIENT_HEADERS = frozenset(
    {
        DELIVERY_COUNT_HEADER,
        "x-death",
        "x-first-death-exchange",
        "x-first-death-queue",
        "x-first-death-reason",
        "x-last-death-exchange",
        "x-last-death-queue",
        "x-last-death-reason",
        "x-stream-offset",
    }
)

# RabbitMQ 4 gives quorum queues a default delivery limit of 20 and then *drops* a message
# unless a dead-letter target is set. The platform dead-letters after its own count long
# before; this is only the net for a message that kills its consumer every time.
GROUP_DELIVERY_LIMIT = 100
DAY_MS = 24 * 3600 * 1000


def every_subject(domain: str) -> str:
    """The binding key of a group that takes every message of its domain."""
    return f"{domain}.#"


def exchange_name(domain: str) -> str:
    return f"ates.{domain}"


def log_name(domain: str) -> str:
    return f"ates.{domain}.log"


def group_queue(group: str, domain: str) -> str:
    return f"ates.{domain}.{group}"


def retry_queue(group: str, domain: str, delay_ms: int) -> str:
    return f"{group_queue(group, domain)}.retry.{delay_ms}ms"


def parked_queue(group: str, domain: str) -> str:
    return f"{group_queue(group, domain)}.parked"


def filling_flag(group: str, domain: str) -> str:
    return f"{group_queue(group, domain)}.filling"


def setup_lock(group: str, domain: str) -> str:
    return f"{group_queue(group, domain)}.setup"


def log_arguments(max_age_days: int, max_bytes: int) -> dict[str, Any]:
    return {
        "x-queue-type": "stream",
        "x-max-age": f"{max_age_days}D",
        "x-max-length-bytes": max_bytes,
    }


def _at_least_once_dead_letter(routing_key: str) -> dict[str, Any]:
    # Classic dead-lettering is at-most-once; quorum queues can do it at least once, which
    # requires reject-publish overflow (no length limit is set, so nothing is rejected).
    return {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": routing_key,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def group_arguments(group: str, domain: str) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": GROUP_DELIVERY_LIMIT,
        **_at_least_once_dead_letter(parked_queue(group, domain)),
    }


def parked_arguments() -> dict[str, Any]:
    return {"x-queue-type": "quorum"}


def retry_arguments(group: str, domain: str, delay_ms: int) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-message-ttl": delay_ms,
        # Unused retry queues go away; redeclared at every use, so never while in use.
        "x-expires": delay_ms + DAY_MS,
        **_at_least_once_dead_letter(group_queue(group, domain)),
    }


def retry_delay_ms(delay_seconds: float) -> int:
    """One queue per distinct delay: whole milliseconds, at least one."""
    return max(1, round(delay_seconds * 1000))

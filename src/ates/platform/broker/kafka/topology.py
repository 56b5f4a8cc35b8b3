"""Names and settings of what the Kafka adapter keeps on the broker.

Everything is named under a namespace (``ates`` unless told otherwise), so that several
installations, or several tests, can share one cluster without seeing each other:

- ``<ns>.<domain>``: the domain's log, partitioned by the aggregate key (one task's or one
  person's events stay in one partition, in order). Kept by age and size, for rebuilds.
- consumer group ``<ns>.<group>.<domain>``: one group of ours reading one domain; deleting
  it (a rebuild) forgets exactly that position.
- ``<ns>.<domain>.<group>.retry``: messages that group answered ``Retry`` to, each with
  its attempt and the time before which it must not come back (headers below).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DAY_MS = 24 * 3600 * 1000

# Headers of every message (the body stays the event's JSON, as on the other brokers).
EVENT_NAME = "ates-event-name"
EVENT_ID = "ates-event-id"
# Headers of a retry copy.
ATTEMPT = "ates-attempt"  # the attempt the copy is (2 for the first retry)
NOT_BEFORE = "ates-not-before"  # epoch milliseconds

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class Names:
    namespace: str = "ates"

    def domain_topic(self, domain: str) -> str:
        return f"{self.namespace}.{domain}"

    def group_id(self, group: str, domain: str) -> str:
        return f"{self.namespace}.{group}.{domain}"

    def retry_topic(self, group: str, domain: str) -> str:
        return f"{self.namespace}.{domain}.{group}.retry"


def header(headers: Sequence[tuple[str, bytes]] | None, name: str) -> bytes | None:
    """The value of the first header called ``name``."""
    for key, value in headers or ():
        if key == name:
            return value
    return None


def int_header(headers: Sequence[tuple[str, bytes]] | None, name: str, default: int) -> int:
    value = header(headers, name)
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def topic_configs(
    *, max_age_days: int, max_bytes: int, partitions: int, replicas: int
) -> dict[str, str]:
    """Retention by age and size (Kafka counts bytes per partition), and how many copies
    must have a message before ``acks=all`` confirms it: two of three in a production
    cluster, so one broker may be down without refusing publishes or losing any."""
    return {
        "cleanup.policy": "delete",
        "retention.ms": str(max_age_days * DAY_MS),
        "retention.bytes": str(max(max_bytes // partitions, 1024 * 1024)),
        "min.insync.replicas": str(max(replicas - 1, 1)),
    }

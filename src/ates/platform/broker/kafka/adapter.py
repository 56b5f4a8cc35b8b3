"""Apache Kafka adapter (aiokafka) of the broker port.

- URL ``kafka://host:port[,host:port]``: the bootstrap servers.
- Topology (:mod:`.topology`, all under ``namespace``): a topic per domain with
  ``partitions`` partitions, kept by age and size; replicated ``min(3, brokers)`` times
  unless told, with ``min.insync.replicas`` one less (a single development broker: 1, 1).
- Publishing: an idempotent producer with ``acks=all``, each message keyed by its
  aggregate (``OutgoingMessage.key``, else its event id) so that one task's events stay in
  one partition, in order. ``publish`` returns once the broker confirmed every message,
  else raises BrokerUnavailable and replaces the producer (a producer whose batches
  expired may be left with sequence numbers the broker no longer accepts).
- Consuming (:mod:`.session`): our group is a Kafka consumer group per domain; offsets are
  committed after the handler returned; ``Retry`` goes through a retry topic per group
  (:mod:`.retries`); attempts survive crashes (:mod:`.attempts`). A session that fails
  (broker gone, commit refused after a rebalance) is started again after
  ``reconnect_delay``: it resumes from the committed offsets.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import (
    GroupCoordinatorNotAvailableError,
    KafkaError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)
from aiokafka.structs import TopicPartition

from ates.platform.broker.base import (
    BatchHandler,
    Broker,
    BrokerUnavailable,
    OutgoingMessage,
    consume_in_sessions,
)
from ates.platform.broker.kafka.groups import delete_group
from ates.platform.broker.kafka.session import GroupSession, SessionOptions
from ates.platform.broker.kafka.topology import (
    EVENT_ID,
    EVENT_NAME,
    Names,
    topic_configs,
)

log = structlog.get_logger(__name__)

BROKER_ERRORS: tuple[type[BaseException], ...] = (KafkaError, OSError, TimeoutError)
# What ends a consumer session and starts it again (after reconnect_delay).
SESSION_ERRORS: tuple[type[BaseException], ...] = (*BROKER_ERRORS, BrokerUnavailable)

Record = tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]  # topic, key, value, headers


def bootstrap_servers(url: str) -> str:
    """``kafka://h1:9092,h2:9092`` -> ``h1:9092,h2:9092``."""
    if not url.startswith("kafka://"):
        raise ValueError(f"not a Kafka URL: {url!r}")
    servers = url.removeprefix("kafka://").split("/", 1)[0]
    if not servers:
        raise ValueError(f"no bootstrap servers in {url!r}")
    return servers


class KafkaBroker(Broker):
    def __init__(
        self,
        url: str,
        *,
        max_age_days: int = 365,
        max_bytes: int = 10 * 1024**3,
        partitions: int = 6,
        namespace: str = "ates",
        replication_factor: int | None = None,
        publish_timeout: float = 10,
        reconnect_delay: float = 0.5,
        poll_seconds: float = 1.0,
        revoke_timeout: float = 10.0,
        failure_backoff: float = 0.5,
    ) -> None:
        self.url = url
        self._servers = bootstrap_servers(url)
        self._names = Names(namespace)
        self._max_age_days = max_age_days
        self._max_bytes = max_bytes
        self._partitions = partitions
        self._replication_factor = replication_factor
        self._publish_timeout = publish_timeout
        self._reconnect_delay = reconnect_delay
        self._session = SessionOptions(
            poll_seconds=poll_seconds,
            revoke_timeout=revoke_timeout,
            failure_backoff=failure_backoff,
        )
        self._admin: AIOKafkaAdminClient | None = None
        self._producer: AIOKafkaProducer | None = None
        self._offsets: AIOKafkaConsumer | None = None  # group-less, for log_size
        self._known_topics: set[str] = set()
        self._lock = asyncio.Lock()
        self._closing: set[asyncio.Task[None]] = set()

    # --- connection -----------------------------------------------------------------

    async def connect(self) -> None:
        async with self._lock:
            if self._admin is not None:
                return
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self._servers,
                client_id="ates-admin",
                request_timeout_ms=int(self._publish_timeout * 1000),
            )
            try:
                await admin.start()
            except BROKER_ERRORS as error:
                with contextlib.suppress(Exception):
                    await admin.close()
                raise BrokerUnavailable(f"cannot reach Kafka at {self.url}: {error!r}") from error
            self._admin = admin

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        offsets, self._offsets = self._offsets, None
        admin, self._admin = self._admin, None
        for client in (producer, offsets):
            if client is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.stop(), 5)
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.close()
        for task in list(self._closing):
            with contextlib.suppress(Exception):
                await task

    @property
    def admin(self) -> AIOKafkaAdminClient:
        if self._admin is None:
            raise BrokerUnavailable("not connected")
        return self._admin

    # --- topology -------------------------------------------------------------------

    async def ensure_streams(self, domains: Iterable[str]) -> None:
        await self._ensure_topics([self._names.domain_topic(domain) for domain in domains])

    async def _ensure_topics(self, topics: list[str]) -> None:
        missing = [topic for topic in topics if topic not in self._known_topics]
        if not missing:
            return
        await self.connect()
        try:
            replicas = self._replication_factor or await self._default_replicas()
            configs = topic_configs(
                max_age_days=self._max_age_days,
                max_bytes=self._max_bytes,
                partitions=self._partitions,
                replicas=replicas,
            )
            response = await self.admin.create_topics(
                [
                    NewTopic(topic, self._partitions, replicas, topic_configs=configs)
                    for topic in missing
                ]
            )
            for topic, code, *_ in response.topic_errors:
                if code not in (0, TopicAlreadyExistsError.errno):
                    raise KafkaError(f"cannot create topic {topic}: error {code}")
            await self._until_served(missing)
        except BROKER_ERRORS as error:
            raise BrokerUnavailable(f"cannot create topics {missing}: {error!r}") from error
        self._known_topics.update(missing)

    async def _until_served(self, topics: list[str]) -> None:
        """Until the broker's metadata names a leader for every partition of ``topics``.

        The controller says a topic exists (created, or "already exists" when another
        process created it a moment ago) before the brokers serve it. A consumer that
        subscribes in between is told the topic is unknown, and aiokafka logs that as an
        error at each retry; several processes starting together did, every time."""
        deadline = asyncio.get_running_loop().time() + self._publish_timeout
        while True:
            described = await self.admin.describe_topics(topics)
            pending = [
                t["topic"]
                for t in described
                if t["error_code"]
                or not t["partitions"]
                or any(p["error_code"] or p["leader"] < 0 for p in t["partitions"])
            ]
            if not pending:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise BrokerUnavailable(f"topics {pending} not served yet")
            await asyncio.sleep(0.05)

    async def _default_replicas(self) -> int:
        cluster = await self.admin.describe_cluster()
        return max(1, min(3, len(cluster["brokers"])))

    # --- publishing -----------------------------------------------------------------

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        if not messages:
            return
        await self.ensure_streams({m.domain for m in messages})
        await self._produce(
            [
                (
                    self._names.domain_topic(m.domain),
                    (m.key or m.event_id).encode(),
                    m.body,
                    [(EVENT_NAME, m.event_name.encode()), (EVENT_ID, m.event_id.encode())],
                )
                for m in messages
            ]
        )

    async def _produce(self, records: Sequence[Record]) -> None:
        """Send and wait until the broker confirmed every record (all in-sync replicas)."""
        producer = await self._get_producer()
        try:
            async with asyncio.timeout(self._publish_timeout):
                futures = [
                    await producer.send(topic, value, key=key, headers=headers)
                    for topic, key, value, headers in records
                ]
                await asyncio.gather(*futures)
        except BROKER_ERRORS as error:
            self._drop_producer(producer)
            raise BrokerUnavailable(f"publish not confirmed: {error!r}") from error

    async def _get_producer(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self._servers,
                    client_id="ates-producer",
                    enable_idempotence=True,
                    acks="all",
                    linger_ms=2,  # lets a relay's batch leave as few requests
                    request_timeout_ms=int(self._publish_timeout * 1000),
                )
                try:
                    await producer.start()
                except BROKER_ERRORS as error:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(producer.stop(), 1)
                    raise BrokerUnavailable(f"cannot reach Kafka: {error!r}") from error
                self._producer = producer
            return self._producer

    def _drop_producer(self, producer: AIOKafkaProducer) -> None:
        """Forget a failed producer; it flushes and closes in the background (stopping it
        waits for its pending batches, up to the request timeout)."""
        if self._producer is producer:
            self._producer = None
        task = asyncio.create_task(_stop_quietly(producer, self._publish_timeout + 5))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    # --- consuming ------------------------------------------------------------------

    async def consume(
        self,
        group: str,
        domain: str,
        event_names: Sequence[str] | None,
        handler: BatchHandler,
        *,
        batch_size: int = 64,
    ) -> None:
        options = SessionOptions(
            batch_size=batch_size,
            poll_seconds=self._session.poll_seconds,
            failure_backoff=self._session.failure_backoff,
            revoke_timeout=self._session.revoke_timeout,
        )

        async def session() -> None:
            await self.connect()
            topics = [self._names.domain_topic(domain), self._names.retry_topic(group, domain)]
            await self._ensure_topics(topics)
            await GroupSession(
                bootstrap_servers=self._servers,
                names=self._names,
                admin=self.admin,
                produce=self._produce,
                group=group,
                domain=domain,
                event_names=event_names,
                handler=handler,
                options=options,
            ).run()

        await consume_in_sessions(
            session, lost=SESSION_ERRORS, delay=self._reconnect_delay, group=group, domain=domain
        )

    async def delete_group(self, group: str, domain: str) -> None:
        await self.connect()
        topic = self._names.retry_topic(group, domain)
        # A client of its own: aiokafka's admin client has no DeleteGroups (see .groups),
        # and a rebuild deletes groups rarely enough that a short connection is fine.
        client = AIOKafkaClient(bootstrap_servers=self._servers, client_id="ates-admin")
        try:
            await client.bootstrap()
            await delete_group(client, self._names.group_id(group, domain))
            response = await self.admin.delete_topics([topic])
            for _topic, code in response.topic_error_codes:
                if code not in (0, UnknownTopicOrPartitionError.errno):
                    raise KafkaError(f"cannot delete topic {topic}: {code}")
        except BROKER_ERRORS as error:
            raise BrokerUnavailable(f"cannot delete group {group}: {error!r}") from error
        finally:
            await client.close()
        self._known_topics.discard(topic)

    async def log_size(self, domain: str) -> int:
        topic = self._names.domain_topic(domain)
        try:
            await self.connect()
            retained = await self._retained(topic)
        except BROKER_ERRORS as error:
            raise BrokerUnavailable(f"cannot read offsets of {topic}: {error!r}") from error
        if retained is None:
            return 0  # no such topic (yet): nothing published
        return sum(end - start for start, end in retained.values())

    async def lag(self, group: str, domain: str) -> int | None:
        """End offsets of the domain's partitions minus the group's committed offsets (a
        partition it never committed counts from its first retained offset)."""
        topic = self._names.domain_topic(domain)
        try:
            await self.connect()
            try:
                committed = await self.admin.list_consumer_group_offsets(
                    self._names.group_id(group, domain)
                )
            except GroupCoordinatorNotAvailableError:
                return None  # no group has committed anything yet (no offsets topic)
            retained = await self._retained(topic)
        except BROKER_ERRORS as error:
            raise BrokerUnavailable(f"cannot read the offsets of {group}: {error!r}") from error
        if retained is None or not committed:
            return None  # no such topic or no such group (yet)
        lag = 0
        for tp, (start, end) in retained.items():
            offset = committed.get(tp)
            position = offset.offset if offset is not None and offset.offset >= 0 else start
            lag += max(0, end - max(position, start))
        return lag

    async def _retained(self, topic: str) -> dict[TopicPartition, tuple[int, int]] | None:
        """Each partition of ``topic`` with its first retained offset and its end offset;
        None when there is no such topic (yet). The client's errors pass through: the
        caller says what it could not read."""
        (described,) = await self.admin.describe_topics([topic])
        partitions = [p["partition"] for p in described["partitions"]]
        if described["error_code"] or not partitions:
            return None
        reader = await self._offset_reader()
        tps = [TopicPartition(topic, p) for p in partitions]
        ends = await reader.end_offsets(tps)
        starts = await reader.beginning_offsets(tps)
        return {tp: (starts[tp], ends[tp]) for tp in tps}

    async def _offset_reader(self) -> AIOKafkaConsumer:
        async with self._lock:
            if self._offsets is None:
                reader = AIOKafkaConsumer(bootstrap_servers=self._servers, client_id="ates-offsets")
                await reader.start()
                self._offsets = reader
            return self._offsets


async def _stop_quietly(client: Any, timeout: float) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.stop(), timeout)

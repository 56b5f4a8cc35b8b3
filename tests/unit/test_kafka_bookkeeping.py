"""The Kafka adapter's bookkeeping, without a broker: attempt notes, held retry copies,
names, the URL, and the local server's refusal to start without its jars."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka.structs import TopicPartition

from ates.platform.broker import create_broker
from ates.platform.broker.kafka.adapter import KafkaBroker, bootstrap_servers
from ates.platform.broker.kafka.attempts import DeliveryCounts, Mark
from ates.platform.broker.kafka.retries import RetryBuffer
from ates.platform.broker.kafka.server import LocalKafka, LocalKafkaError, broker_ready
from ates.platform.broker.kafka.topology import ATTEMPT, NOT_BEFORE, Names, topic_configs

TP = TopicPartition("ates.tasks", 0)
RETRY = TopicPartition("ates.tasks.billing.retry", 0)


@dataclass
class FakeRecord:
    offset: int
    headers: list[tuple[str, bytes]]


def copy(offset: int, due_ms: int, attempt: int = 2) -> FakeRecord:
    return FakeRecord(
        offset, [(ATTEMPT, str(attempt).encode()), (NOT_BEFORE, str(due_ms).encode())]
    )


# --- attempts ------------------------------------------------------------------------------


def test_a_record_handed_out_before_counts_one_attempt_more() -> None:
    counts = DeliveryCounts()
    assert counts.attempt(TP, 10) == 1
    counts.failed(TP, [10, 11, 12])
    assert [counts.attempt(TP, o) for o in (9, 10, 12, 13)] == [1, 2, 2, 1]
    counts.failed(TP, [10, 11, 12])
    assert counts.attempt(TP, 11) == 3
    counts.settled(TP)
    assert counts.attempt(TP, 11) == 1


def test_the_note_a_crash_leaves_is_read_by_the_next_owner() -> None:
    mine = DeliveryCounts()
    note = mine.if_failed(TP, [5, 6]).encode()  # committed before the handler ran
    theirs = DeliveryCounts()
    theirs.load(TP, note)
    assert (theirs.attempt(TP, 5), theirs.attempt(TP, 7)) == (2, 1)
    assert theirs.attempt(TP, 6, base=3) == 4, "a retry copy adds its own attempt"


@pytest.mark.parametrize("note", [None, "", "garbage", "1-2", "a-b:c"])
def test_a_settled_or_foreign_note_counts_nothing(note: str | None) -> None:
    assert Mark.decode(note) is None
    counts = DeliveryCounts()
    counts.load(TP, note)
    assert counts.attempt(TP, 1) == 1


# --- retry copies ------------------------------------------------------------------------


def test_copies_come_out_in_order_of_due_time_not_of_offset() -> None:
    buffer = RetryBuffer()
    buffer.hold(RETRY, copy(0, due_ms=5_000))
    buffer.hold(RETRY, copy(1, due_ms=1_000))
    assert buffer.take_due(10, now=0.5) == []
    assert buffer.seconds_to_next(now=0.5) == pytest.approx(0.5)
    (short,) = buffer.take_due(10, now=1.0)
    assert short.offset == 1
    # the long one still waits, so the partition may not be committed past it
    buffer.settle([short])
    assert buffer.commit_offsets([RETRY]) == {RETRY: 0}
    (long,) = buffer.take_due(10, now=5.0)
    buffer.settle([long])
    assert buffer.commit_offsets([RETRY]) == {RETRY: 2}


def test_copies_of_a_failed_batch_are_due_again_and_revoked_ones_are_dropped() -> None:
    buffer = RetryBuffer()
    buffer.hold(RETRY, copy(3, due_ms=0))
    taken = buffer.take_due(10, now=1.0)
    buffer.put_back(taken)
    assert [h.offset for h in buffer.take_due(10, now=1.0)] == [3]
    buffer.put_back(taken)
    buffer.drop([RETRY])
    assert len(buffer) == 0
    assert buffer.commit_offsets([RETRY]) == {}


# --- names, URL, settings -------------------------------------------------------------------


def test_names_live_under_a_namespace() -> None:
    names = Names("ates")
    assert names.domain_topic("tasks") == "ates.tasks"
    assert names.group_id("billing", "tasks") == "ates.billing.tasks"
    assert names.retry_topic("billing", "tasks") == "ates.tasks.billing.retry"


def test_kafka_urls_name_the_bootstrap_servers() -> None:
    assert bootstrap_servers("kafka://k1:9092,k2:9092") == "k1:9092,k2:9092"
    with pytest.raises(ValueError):
        bootstrap_servers("kafka://")
    assert isinstance(create_broker("kafka://127.0.0.1:9092"), KafkaBroker)


def test_retention_is_split_over_partitions_and_two_of_three_copies_confirm() -> None:
    configs = topic_configs(max_age_days=2, max_bytes=600 * 1024**2, partitions=6, replicas=3)
    assert configs["retention.ms"] == str(2 * 24 * 3600 * 1000)
    assert configs["retention.bytes"] == str(100 * 1024**2)
    assert configs["min.insync.replicas"] == "2"
    assert (
        topic_configs(max_age_days=1, max_bytes=1, partitions=1, replicas=1)["min.insync.replicas"]
        == "1"
    )


# --- the local server ----------------------------------------------------------------------


def test_the_local_server_says_how_to_get_its_jars(tmp_path: Path) -> None:
    server = LocalKafka(tmp_path / "kafka", libs=tmp_path / "no-jars")
    with pytest.raises(LocalKafkaError, match=r"deploy/kafka/fetch\.sh"):
        server.start()


def test_a_port_that_is_not_kafka_is_not_ready() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        assert not broker_ready("127.0.0.1", port, timeout=0.2)  # bound, not listening

"""Fixtures of a local Apache Kafka for integration tests (``LocalKafka``: the broker jars
that ``deploy/kafka/fetch.sh`` fetched, run by the test session itself).

- ``kafka_server``: one broker for the whole session, for tests that only look at their
  own messages (their own event ids, groups and, where it matters, domains).
- ``own_kafka_server``: a broker of one test's own, for tests that stop or restart it.
- ``kafka_jars``: only the jars (and Java), for a test whose subject starts Kafka itself.

Without the jars (or Java) a test skips, saying how to get them; under ``CI=true`` it fails.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ates.platform.broker.kafka.server import FETCH_SCRIPT, LocalKafka, kafka_libs, libs_present
from tests.backends import unavailable


def _require_kafka() -> None:
    if shutil.which("java") is None:
        unavailable("Java (to run Kafka)", "install a JDK 17+, e.g. `apt-get install default-jre`")
    if not libs_present():
        unavailable(f"Kafka (its jars in {kafka_libs()})", f"fetch it: {FETCH_SCRIPT}")


def _started(data_dir: Path) -> LocalKafka:
    server = LocalKafka(data_dir, log_level="WARN")
    server.start()
    return server


@pytest.fixture(scope="session")
def kafka_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    _require_kafka()
    server = _started(tmp_path_factory.mktemp("kafka"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def own_kafka_server(tmp_path: Path) -> Iterator[LocalKafka]:
    _require_kafka()
    server = _started(tmp_path / "kafka")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kafka_jars() -> Path:
    _require_kafka()
    return kafka_libs()

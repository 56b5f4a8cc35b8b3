"""Fixtures for end-to-end tests: one real system per test module (``ates up`` in a
subprocess), for browser tests Debian's Chromium driven by Playwright, and the servers of
the production topology (PostgreSQL, and a broker of each kind)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ates.platform.broker.kafka.server import LocalKafka
from tests.backends import postgres_dsn, rabbitmq_server
from tests.e2e.production import KAFKA, RABBITMQ, TopologyBroker, rabbitmq_vhost
from tests.e2e.stack import Stack, start_stack
from tests.kafka import own_kafka_server

__all__ = ["own_kafka_server", "postgres_dsn", "rabbitmq_server"]  # fixtures used below

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole system, started once for the tests of one module."""
    running = start_stack(tmp_path_factory.mktemp("ates") / "var")
    running.drain()
    try:
        yield running
    finally:
        running.stop()


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"no browser at {CHROMIUM}: apt-get install chromium"
    if os.environ.get("CI") == "true":
        pytest.fail(message)  # in CI a missing browser is a broken image, not a skip
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium (Debian's; no browser is ever downloaded)."""
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where browser tests leave screenshots of the pages they saw (``E2E_SCREENSHOTS``
    to keep them somewhere fixed)."""
    chosen = os.environ.get("E2E_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(params=[RABBITMQ, KAFKA])
async def production_broker(request: pytest.FixtureRequest) -> AsyncIterator[TopologyBroker]:
    """The broker of a production topology; a test that asks for it runs once on each
    kind: a fresh virtual host on the machine's RabbitMQ, or a Kafka broker of the test's
    own (``own_kafka_server``: its own data folder, ports the operating system chose).
    A test for one kind only says so: ``@pytest.mark.parametrize("production_broker",
    [KAFKA], indirect=True)``."""
    if request.param == "kafka":
        server: LocalKafka = request.getfixturevalue("own_kafka_server")
        yield TopologyBroker("kafka", server.url, kafka=server)
    else:
        async with rabbitmq_vhost(request.getfixturevalue("rabbitmq_server")) as broker:
            yield broker

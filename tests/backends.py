"""Production backends for integration tests: this machine's PostgreSQL and RabbitMQ.

Each test gets a throwaway place of its own on the shared server — a database
``ates_test_<hex>`` on PostgreSQL, a virtual host ``ates-test-<hex>`` on RabbitMQ — dropped
afterwards, so tests never see each other's tables, queues or retained history. A test
that restarts RabbitMQ gets a node of its own instead (``own_rabbitmq``): nobody's
connections to the shared server are ever dropped by a test.

Where a server is absent the test skips with a message saying what to start; under
``CI=true`` an absent server fails the test instead (CI promises both servers).

Override the servers with ``TEST_POSTGRES_DSN`` (a libpq URL to the maintenance database)
and ``TEST_RABBITMQ_URL`` (``amqp://user:password@host:port/``). Not ``ATES_*``: the root
conftest clears those so that a developer's shell never leaks into a test.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ates.testing.servers import (
    POSTGRES_DSN,
    RABBITMQ_URL,
    create_database,
    database_dsn,
    drop_database,
    rabbitmqctl,
    sqlalchemy_url,
    throwaway_vhost,
)
from tests.rabbitmq_node import RabbitNode, rabbitmq_bin_dir


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(what: str, how_to_start: str) -> None:
    """Skip (or, under CI=true, fail) a test whose server is missing."""
    message = f"{what} is not available; start it ({how_to_start})"
    if in_ci():
        pytest.fail(f"{message} — CI=true, so a missing server is a failure", pytrace=False)
    pytest.skip(message)


def port_open(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 1
        ):
            return True
    except OSError:
        return False


# --- PostgreSQL ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_dsn() -> str:
    """The maintenance database of a reachable PostgreSQL server."""
    if not port_open(POSTGRES_DSN, 5432):
        unavailable(
            f"PostgreSQL at {urlsplit(POSTGRES_DSN).netloc}",
            "e.g. `pg_ctlcluster 15 main start`, or set TEST_POSTGRES_DSN",
        )
    return POSTGRES_DSN


@pytest.fixture
async def postgres_url(postgres_dsn: str) -> AsyncIterator[str]:
    """A fresh, empty database for one test (``postgresql+asyncpg://``), dropped after."""
    name = await create_database(postgres_dsn)
    try:
        yield sqlalchemy_url(database_dsn(postgres_dsn, name))
    finally:
        await drop_database(postgres_dsn, name)


@pytest.fixture
async def make_postgres_database(postgres_dsn: str) -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """A factory of fresh databases for tests that need several; all dropped after."""
    created: list[str] = []

    async def make() -> str:
        name = await create_database(postgres_dsn)
        created.append(name)
        return sqlalchemy_url(database_dsn(postgres_dsn, name))

    try:
        yield make
    finally:
        for name in created:
            await drop_database(postgres_dsn, name)


# --- RabbitMQ ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def rabbitmq_server() -> str:
    """A reachable RabbitMQ whose ``rabbitmqctl`` works here (for vhosts and restarts)."""
    if not port_open(RABBITMQ_URL, 5672):
        unavailable(
            f"RabbitMQ at {urlsplit(RABBITMQ_URL).hostname}:{urlsplit(RABBITMQ_URL).port or 5672}",
            "e.g. `rabbitmq-server -detached`, or set TEST_RABBITMQ_URL",
        )
    if shutil.which("rabbitmqctl") is None:
        unavailable("rabbitmqctl (tests create a virtual host each)", "install rabbitmq-server")
    return RABBITMQ_URL


def restarts_rabbitmq(request: pytest.FixtureRequest) -> bool:
    """Whether a test stops and starts RabbitMQ: it asks for ``restart_broker`` (the
    broker contract) or calls :func:`restart_rabbitmq`."""
    function = getattr(request, "function", None)
    return "restart_broker" in request.fixturenames or (
        function is not None and "restart_rabbitmq" in function.__code__.co_names
    )


@pytest.fixture
async def rabbitmq_url(request: pytest.FixtureRequest, rabbitmq_server: str) -> AsyncIterator[str]:
    """An AMQP URL on a virtual host of one test's own, deleted (with every queue) after;
    for a test that restarts RabbitMQ, the URL of a node of its own (``own_rabbitmq``)."""
    if restarts_rabbitmq(request):
        node: RabbitNode = request.getfixturevalue("own_rabbitmq")
        yield node.url
        return
    async with throwaway_vhost(rabbitmq_server, f"ates-test-{uuid.uuid4().hex[:12]}") as url:
        yield url


async def wait_for_rabbitmq(url: str, timeout: float = 60) -> None:
    await rabbitmqctl("await_startup", timeout=timeout)
    deadline = asyncio.get_running_loop().time() + timeout
    while not port_open(url, 5672):
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError("RabbitMQ did not come back")
        await asyncio.sleep(0.2)


_own_node: RabbitNode | None = None


@pytest.fixture
def own_rabbitmq(tmp_path: Path) -> Iterator[RabbitNode]:
    """A RabbitMQ node of this test's own (``tests.rabbitmq_node``), stopped after it."""
    global _own_node
    bin_dir = rabbitmq_bin_dir()
    if bin_dir is None:
        unavailable("rabbitmq-server (a test starts a node of its own)", "install rabbitmq-server")
    assert bin_dir is not None
    node = RabbitNode(tmp_path / "rabbitmq", bin_dir)
    node.start()
    _own_node = node
    try:
        yield node
    finally:
        _own_node = None
        node.stop()


async def restart_rabbitmq(
    while_down: Callable[[], Awaitable[None]] | None = None, *, down_seconds: float = 0.0
) -> None:
    """Restart the RabbitMQ node of the running test (``own_rabbitmq``: ``rabbitmq_url``
    gives one to a test that calls this), running ``while_down`` while it is down.

    Never the machine's shared server: without a node of the test's own this refuses."""
    if _own_node is None:
        raise RuntimeError(
            "restart_rabbitmq restarts a test's own RabbitMQ node (fixture own_rabbitmq), "
            "never the machine's shared server"
        )
    await _own_node.restart(while_down, down_seconds=down_seconds)

"""Production backends for integration tests: this machine's PostgreSQL and RabbitMQ.

Each test gets a throwaway place of its own on the shared server — a database
``ates_test_<hex>`` on PostgreSQL, a virtual host ``ates-test-<hex>`` on RabbitMQ — dropped
afterwards, so tests never see each other's tables, queues or retained history.

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
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import pytest

POSTGRES_DSN = os.environ.get("TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")


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


def database_dsn(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


def sqlalchemy_url(dsn: str) -> str:
    return dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


async def create_database(dsn: str) -> str:
    name = f"ates_test_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return name


async def drop_database(dsn: str, name: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        # FORCE (PostgreSQL 13+) ends sessions a failed test may have left behind.
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


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


async def rabbitmqctl(*args: str, timeout: float = 60) -> str:
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    if process.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {err.decode() or out.decode()}")
    return out.decode()


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


def vhost_url(url: str, vhost: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{quote(vhost, safe='')}"))


@pytest.fixture
async def rabbitmq_url(rabbitmq_server: str) -> AsyncIterator[str]:
    """An AMQP URL on a virtual host of one test's own, deleted (with every queue) after."""
    vhost = f"ates-test-{uuid.uuid4().hex[:12]}"
    user = urlsplit(rabbitmq_server).username or "guest"
    await rabbitmqctl("add_vhost", vhost)
    try:
        await rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
        yield vhost_url(rabbitmq_server, vhost)
    finally:
        await wait_for_rabbitmq(rabbitmq_server)  # a restarting test may leave it booting
        await rabbitmqctl("delete_vhost", vhost)


async def wait_for_rabbitmq(url: str, timeout: float = 60) -> None:
    await rabbitmqctl("await_startup", timeout=timeout)
    deadline = asyncio.get_running_loop().time() + timeout
    while not port_open(url, 5672):
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError("RabbitMQ did not come back")
        await asyncio.sleep(0.2)


async def restart_rabbitmq(
    while_down: Callable[[], Awaitable[None]] | None = None, *, down_seconds: float = 0.0
) -> None:
    """Stop the machine's RabbitMQ application, run ``while_down``, start it again.

    ``stop_app`` keeps the Erlang node (and the data) and closes every connection, as a
    restart would."""
    await rabbitmqctl("stop_app")
    try:
        if while_down is not None:
            await while_down()
        if down_seconds:
            await asyncio.sleep(down_seconds)
    finally:
        await rabbitmqctl("start_app")
        await wait_for_rabbitmq(RABBITMQ_URL)

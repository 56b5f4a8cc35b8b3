"""Throwaway places on this machine's servers: a database ``ates_test_<hex>`` on
PostgreSQL, a virtual host on RabbitMQ (through ``rabbitmqctl``). The tests' fixtures
(``tests/backends.py``) and the benchmarks make theirs with these.

Override the servers with ``TEST_POSTGRES_DSN`` (a libpq URL to the maintenance database)
and ``TEST_RABBITMQ_URL`` (``amqp://user:password@host:port/``).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

POSTGRES_DSN = os.environ.get("TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")


def database_dsn(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


def sqlalchemy_url(dsn: str) -> str:
    return dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


async def create_database(dsn: str, name: str | None = None) -> str:
    """Create database ``name`` (by default a fresh ``ates_test_<hex>``); its name."""
    name = name or f"ates_test_{uuid.uuid4().hex[:12]}"
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


K = TypeVar("K")


@asynccontextmanager
async def throwaway_databases(dsn: str, names: Mapping[K, str]) -> AsyncIterator[dict[K, str]]:
    """The databases ``names`` created on the server of ``dsn``, as SQLAlchemy URLs by the
    same keys; dropped on exit, and so is every one made before a failure."""
    created: list[str] = []
    try:
        for name in names.values():
            created.append(await create_database(dsn, name))
        yield {key: sqlalchemy_url(database_dsn(dsn, name)) for key, name in names.items()}
    finally:
        for name in created:
            await drop_database(dsn, name)


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


def vhost_url(url: str, vhost: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{quote(vhost, safe='')}"))


@asynccontextmanager
async def throwaway_vhost(server_url: str, vhost: str) -> AsyncIterator[str]:
    """The virtual host ``vhost`` created on the RabbitMQ of ``server_url`` and open to its
    user; its AMQP URL. Deleted, with every queue and stream in it, on exit."""
    await rabbitmqctl("add_vhost", vhost)
    try:
        user = urlsplit(server_url).username or "guest"
        await rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
        yield vhost_url(server_url, vhost)
    finally:
        await rabbitmqctl("delete_vhost", vhost)

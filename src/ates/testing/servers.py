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
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

POSTGRES_DSN = os.environ.get("TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")


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

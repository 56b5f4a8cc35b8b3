"""Fixtures of the production backends (PostgreSQL, RabbitMQ) for integration tests."""

from tests.backends import (
    make_postgres_database,
    postgres_dsn,
    postgres_url,
    rabbitmq_server,
    rabbitmq_url,
)

__all__ = [
    "make_postgres_database",
    "postgres_dsn",
    "postgres_url",
    "rabbitmq_server",
    "rabbitmq_url",
]

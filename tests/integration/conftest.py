"""Fixtures of the production backends (PostgreSQL, RabbitMQ, Kafka) for integration tests."""

from tests.backends import (
    make_postgres_database,
    own_rabbitmq,
    postgres_dsn,
    postgres_url,
    rabbitmq_server,
    rabbitmq_url,
)
from tests.kafka import kafka_server, own_kafka_server

__all__ = [
    "kafka_server",
    "make_postgres_database",
    "own_kafka_server",
    "own_rabbitmq",
    "postgres_dsn",
    "postgres_url",
    "rabbitmq_server",
    "rabbitmq_url",
]

from typing import Any

from ates.platform.broker.base import (
    Ack,
    BatchHandler,
    Broker,
    BrokerUnavailable,
    Delivery,
    Outcome,
    OutgoingMessage,
    Retry,
    subject_for,
)

__all__ = [
    "Ack",
    "BatchHandler",
    "Broker",
    "BrokerUnavailable",
    "Delivery",
    "Outcome",
    "OutgoingMessage",
    "Retry",
    "subject_for",
]


def create_broker(url: str, **options: Any) -> Broker:
    """The adapter for a broker URL: ``nats://``, ``amqp://`` or ``kafka://``."""
    if url.startswith(("nats://", "tls://")):
        from ates.platform.broker.nats.adapter import NatsBroker

        return NatsBroker(url, **options)
    if url.startswith(("amqp://", "amqps://")):
        from ates.platform.broker.rabbitmq.adapter import RabbitBroker

        return RabbitBroker(url, **options)
    if url.startswith("kafka://"):
        from ates.platform.broker.kafka.adapter import KafkaBroker

        return KafkaBroker(url, **options)
    raise ValueError(f"unsupported broker URL {url!r}")

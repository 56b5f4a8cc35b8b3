from ates.platform.broker.base import (
    Ack,
    Broker,
    BrokerUnavailable,
    Delivery,
    DeliveryHandler,
    Outcome,
    OutgoingMessage,
    Retry,
    subject_for,
)

__all__ = [
    "Ack",
    "Broker",
    "BrokerUnavailable",
    "Delivery",
    "DeliveryHandler",
    "Outcome",
    "OutgoingMessage",
    "Retry",
    "subject_for",
]


def create_broker(url: str, **options: object) -> Broker:
    """The adapter for a broker URL: ``nats://`` or ``amqp://``."""
    if url.startswith(("nats://", "tls://")):
        from ates.platform.broker.nats import NatsBroker

        return NatsBroker(url, **options)  # type: ignore[arg-type]
    if url.startswith(("amqp://", "amqps://")):
        from ates.platform.broker.rabbitmq import RabbitBroker  # type: ignore[import-not-found]

        return RabbitBroker(url, **options)  # type: ignore[no-any-return]
    raise ValueError(f"unsupported broker URL {url!r}")

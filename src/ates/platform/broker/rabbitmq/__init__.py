"""RabbitMQ behind the broker port: topic exchanges, quorum queues, streams for history."""

from ates.platform.broker.rabbitmq.adapter import RabbitBroker

__all__ = ["RabbitBroker"]

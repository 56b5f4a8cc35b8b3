"""Apache Kafka behind the broker port (aiokafka): a partitioned topic per domain, consumer
groups as our durable groups, a retry topic per group for delayed redelivery."""

from ates.platform.broker.kafka.adapter import KafkaBroker

__all__ = ["KafkaBroker"]

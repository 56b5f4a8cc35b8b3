"""RabbitMQ behind the broker port (aio-pika): topic exchanges, quorum queues, streams for
history (``adapter.py``)."""

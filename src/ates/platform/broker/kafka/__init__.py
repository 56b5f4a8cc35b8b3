"""Apache Kafka behind the broker port (aiokafka): a partitioned topic per domain, consumer
groups as our durable groups, a retry topic per group for delayed redelivery
(``adapter.py``); a local single-node Kafka for tests and benchmarks (``server.py``)."""

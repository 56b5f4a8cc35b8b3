"""NATS JetStream behind the broker port (nats-py): a stream per domain, a durable pull
consumer per group (``adapter.py``); the bundled nats-server that ``ates up`` starts
(``server.py``)."""

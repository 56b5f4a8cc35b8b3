"""Helpers shared by the tests and the benchmarks (``bench/``), never by a running service:
a simulated company's events, publishing them, and throwaway places on this machine's
PostgreSQL and RabbitMQ. Public, so a benchmark needs nothing from ``tests/``."""

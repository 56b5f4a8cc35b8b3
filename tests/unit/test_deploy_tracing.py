"""The compose file's trace viewer: Jaeger all-in-one, and every aTES container sending
its spans there (``docker compose config``, as tests/unit/test_deploy.py reads it)."""

from __future__ import annotations

from tests.unit.test_deploy import ATES, _listed, _mapping, _resolved, _services


def test_every_service_sends_its_spans_to_jaeger() -> None:
    services = _services(_resolved(COMPOSE_PROFILES="rabbitmq", ATES_BROKER="rabbitmq"))
    jaeger = services["jaeger"]
    assert any(line.strip().startswith("image: jaegertracing/all-in-one:") for line in jaeger)
    assert _mapping(jaeger, "environment")["COLLECTOR_OTLP_ENABLED"] == "true"
    assert "profiles" not in "".join(jaeger)  # runs with either broker
    for name in ATES:
        environment = _mapping(services[name], "environment")
        assert environment["ATES_OTEL"] == "otlp", name
        assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318", name
    assert "jaeger" not in _listed(services["billing"], "depends_on")  # spans wait, not us


def test_tracing_can_be_turned_off_in_env() -> None:
    services = _services(_resolved(ATES_OTEL="off"))
    assert _mapping(services["tasks"], "environment")["ATES_OTEL"] == "off"

"""Logs: exceptions in production JSON, no secrets in any mode at any level."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog

from ates.config import Settings
from ates.platform.telemetry import configure_logging

SECRET_KEY = "FsnOao9MRusgunSo3DEFzKjwi9MOmyzkwdjEkjidIGY"
BROKER_PASSWORD = "broker-pw-7Hq2"
DB_PASSWORD = "db-pw-Lm3x9"
JWT = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiYXQrand0In0"
    ".eyJzdWIiOiIxMjMiLCJyb2xlIjoiYWRtaW4ifQ"
    ".c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
)
REFRESH_TOKEN = "opaque-refresh-Yb6Kp0Qw"
PASSWORD = "hunter2-Pw!"


Configure = Callable[..., io.StringIO]


@pytest.fixture
def logs() -> Iterator[Configure]:
    """``configure_logging`` writing into a buffer; the previous state restored after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    def configure(level: str = "INFO", *, json: bool = False) -> io.StringIO:
        buffer = io.StringIO()
        configure_logging(level, json=json, stream=buffer)
        return buffer

    yield configure
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


def _fail_holding_secrets() -> None:
    settings = Settings(
        secret_key=SECRET_KEY,
        broker_url=f"amqp://ates:{BROKER_PASSWORD}@rabbit:5672/ates",
        billing_database_url=f"postgresql+asyncpg://ates:{DB_PASSWORD}@db/billing",
    )
    token = {"access_token": JWT, "refresh_token": REFRESH_TOKEN}
    raise RuntimeError(f"cannot reach {settings.broker_url} with {token}")


def _scenario() -> None:
    """What a service logs on a bad day, in every way it logs."""
    structlog.get_logger("ates.test").debug(
        "login.token", token=JWT, url=f"http://t/cb?code=abc&id_token_hint={JWT}"
    )
    # Authlib at DEBUG: the token it issued and the client with its secret
    client = type("Client", (), {"__repr__": lambda self: f"<Client secret='{SECRET_KEY}'>"})()
    logging.getLogger("authlib.oauth2").debug(
        "Issue token %r to %r", {"access_token": JWT, "refresh_token": REFRESH_TOKEN}, client
    )
    logging.getLogger("ates.test").debug("POST /login body username=polly&password=%s", PASSWORD)
    try:
        _fail_holding_secrets()
    except RuntimeError:
        structlog.get_logger("ates.test").exception("service.background_failed")
        logging.getLogger("some.library").exception("Exception in ASGI application")


@pytest.mark.parametrize("json_mode", [False, True], ids=["console", "json"])
def test_no_secret_reaches_the_logs_at_debug(logs: Configure, json_mode: bool) -> None:
    output = logs("DEBUG", json=json_mode)
    _scenario()
    text = output.getvalue()
    assert "service.background_failed" in text and "Issue token" in text, text
    for secret in (SECRET_KEY, BROKER_PASSWORD, DB_PASSWORD, REFRESH_TOKEN, PASSWORD):
        assert secret not in text, f"{secret} leaked:\n{text}"
    assert "eyJ" not in text, f"a JWT leaked:\n{text}"
    assert "RuntimeError" in text and "cannot reach amqp://ates:" in text


def test_production_logs_carry_the_exception_type_message_and_traceback(
    logs: Configure,
) -> None:
    output = logs("INFO", json=True)

    def explode() -> None:
        raise ValueError("the books do not balance")

    try:
        explode()
    except ValueError:
        structlog.get_logger("ates.test").exception("billing.scheduler_failed", day="2026-03-02")
        logging.getLogger("some.library").exception("Exception in ASGI application")
    lines = [json.loads(line) for line in output.getvalue().splitlines()]
    assert [line["event"] for line in lines] == [
        "billing.scheduler_failed",
        "Exception in ASGI application",
    ]
    for line in lines:
        assert line["level"] == "error"
        assert "exc_info" not in line
        (error,) = line["exception"]
        assert error["exc_type"] == "ValueError"
        assert error["exc_value"] == "the books do not balance"
        assert "explode" in [frame["name"] for frame in error["frames"]]
        assert all("locals" not in frame for frame in error["frames"])
    assert lines[0]["day"] == "2026-03-02"


def test_console_logs_keep_structlogs_format_and_level_filter(logs: Configure) -> None:
    output = logs("WARNING")
    log: Any = structlog.get_logger("ates.test")
    log.info("quiet.event")
    log.warning("loud.event", n=1)
    logging.getLogger("ates.other").info("quiet too")
    text = output.getvalue()
    assert "loud.event" in text and "n=1" in text
    assert "quiet" not in text

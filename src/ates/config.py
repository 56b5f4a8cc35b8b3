"""Settings: one object, read from ``ATES_*`` environment variables.

Defaults are the embedded mode: SQLite files under the data directory and the bundled
NATS server. Production sets the URLs. A bad value fails at start with one line that
names the variable (see :func:`describe_error`).
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ates.servicenames import PORT_OFFSETS, SERVICES

__all__ = ["PORT_OFFSETS", "SERVICES", "Settings", "describe_error", "strong_secret"]

DEV_SECRET = "dev-only-insecure-secret"
# Words of defaults and placeholders; a production key containing one is refused however long.
KNOWN_DEFAULTS = (DEV_SECRET, "changeme", "change-me", "change_me", "secret", "password")
SECRET_MIN_CHARS = 32
# Characters times their observed Shannon entropy. 32 random bytes score ≥ 175 written as
# hex or base64 (over 100,000 samples: hex 215+, base64url 177+); 24 bytes score ≤ 160.
SECRET_MIN_BITS = 168


def strong_secret(key: str) -> bool:
    """Whether ``key`` looks like at least 32 random bytes (hex, base64 or similar)."""
    if len(key) < SECRET_MIN_CHARS or any(word in key.lower() for word in KNOWN_DEFAULTS):
        return False
    counts = Counter(key)
    bits = -sum(n * math.log2(n / len(key)) for n in counts.values())
    return bits >= SECRET_MIN_BITS


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ATES_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("var")
    host: str = "127.0.0.1"
    port_base: int = Field(default=8000, ge=1, le=65530)

    # unset = the bundled NATS server started by `ates up`, on a free port
    broker_url: str | None = None
    nats_port: int | None = Field(default=None, ge=1, le=65535)

    # unset = sqlite file <data_dir>/<service>.db
    auth_database_url: str | None = None
    tasks_database_url: str | None = None
    billing_database_url: str | None = None
    analytics_database_url: str | None = None
    notifications_database_url: str | None = None

    # public base URLs (what a browser sees); unset = http://<host>:<port>
    auth_url: str | None = None
    tasks_url: str | None = None
    billing_url: str | None = None
    analytics_url: str | None = None
    notifications_url: str | None = None

    timezone: str = "UTC"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # tracing (OpenTelemetry): off, console (spans on stdout) or otlp (to the standard
    # OTEL_EXPORTER_OTLP_ENDPOINT); an incoming traceparent is honoured in every mode
    otel: Literal["off", "console", "otlp"] = "off"
    secret_key: str = Field(default=DEV_SECRET, repr=False)  # never in a repr or a log
    access_token_ttl_seconds: int = Field(default=300, ge=30, le=3600)

    max_deliveries: int = Field(default=5, ge=1, le=100)
    # a dead letter of a transient failure is retried when its service starts, at most
    # this many times over the service's starts (0: never)
    dead_letter_retries_at_start: int = Field(default=3, ge=0, le=100)
    # deliveries a consumer applies in one transaction (one commit, one fsync)
    consumer_batch_size: int = Field(default=250, ge=1, le=1000)
    retry_backoff_seconds: float = Field(default=0.5, gt=0, le=60)
    outbox_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    outbox_batch_size: int = Field(default=500, ge=1, le=10_000)

    # JetStream retention of each domain stream (history kept for rebuilding read models)
    stream_max_age_days: int = Field(default=365, ge=1)
    stream_max_bytes: int = Field(default=10 * 1024**3, ge=1024**2)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name like Europe/Berlin)"
            ) from error
        return value

    @field_validator(
        "auth_database_url",
        "tasks_database_url",
        "billing_database_url",
        "analytics_database_url",
        "notifications_database_url",
    )
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        return None if value is None else async_database_url(value)

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in ("nats", "tls", "amqp", "amqps", "kafka"):
            raise ValueError(
                f"not a broker URL: {value!r} "
                "(use nats://host:port, amqp://... or kafka://host:port[,host:port])"
            )
        return value

    @field_validator("secret_key")
    @classmethod
    def _strong_secret_in_production(cls, value: str, info: ValidationInfo) -> str:
        # Dashboards trust what the key signs (sessions) and derive client secrets from
        # it: in production a guessable key is a forged admin session.
        if info.data.get("environment") == "production" and not strong_secret(value):
            raise ValueError(
                "too weak for production: use at least 32 random bytes' worth, e.g. "
                "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value

    # --- derived values -------------------------------------------------------------

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def database_url(self, service: str) -> str:
        configured = getattr(self, f"{service}_database_url", None)
        if configured:
            return str(configured)
        return f"sqlite+aiosqlite:///{(self.data_dir / f'{service}.db').resolve()}"

    def port(self, service: str) -> int:
        return self.port_base + PORT_OFFSETS[service]

    def public_url(self, service: str) -> str:
        configured = getattr(self, f"{service}_url", None)
        if configured:
            return str(configured).rstrip("/")
        return f"http://{self.host}:{self.port(service)}"

    @property
    def issuer(self) -> str:
        return self.public_url("auth")


# Each database, however its URL names it, through the async driver aTES runs it with.
ASYNC_DRIVERS = {
    "postgres": "postgresql+asyncpg",  # libpq's and the hosting platforms' spelling
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "postgresql+psycopg": "postgresql+asyncpg",
    "postgresql+psycopg2": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
}


def async_database_url(value: str) -> str:
    """A database URL as people write it (``postgres://``, ``postgresql://``,
    ``sqlite:///…``), with the async driver aTES uses: ``postgresql+asyncpg://`` or
    ``sqlite+aiosqlite://``. libpq's ``sslmode`` becomes asyncpg's ``ssl``."""
    from sqlalchemy.engine import make_url  # only when a URL is given: keeps the CLI quick
    from sqlalchemy.exc import ArgumentError

    scheme, sep, rest = value.partition("://")
    try:
        url = make_url(f"postgresql://{rest}" if sep and scheme == "postgres" else value)
    except ArgumentError as error:
        raise ValueError(f"not a database URL: {value!r}") from error
    driver = ASYNC_DRIVERS.get("postgres" if scheme == "postgres" else url.drivername)
    if driver is None:
        raise ValueError(
            f"unsupported database {url.drivername!r}: use postgresql://… (or postgres://…) "
            "or sqlite:///path"
        )
    url = url.set(drivername=driver)
    if driver == "postgresql+asyncpg" and "sslmode" in url.query:
        sslmode = url.query["sslmode"]
        url = url.difference_update_query(["sslmode"]).update_query_dict({"ssl": sslmode})
    return url.render_as_string(hide_password=False)


def describe_error(error: ValidationError) -> str:
    """One line per bad setting, naming the environment variable."""
    lines = []
    for item in error.errors():
        field = str(item["loc"][0]) if item["loc"] else ""
        name = f"ATES_{field.upper()}" if field else "settings"
        message = str(item["msg"]).removeprefix("Value error, ")
        lines.append(f"{name}: {message}")
    return "; ".join(lines)

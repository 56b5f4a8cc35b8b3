from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from ates.config import Settings, describe_error


def _error(**values: object) -> str:
    with pytest.raises(ValidationError) as info:
        Settings(**values)  # type: ignore[arg-type]
    return describe_error(info.value)


def test_defaults_are_the_embedded_mode(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.broker_url is None
    assert settings.database_url("billing") == f"sqlite+aiosqlite:///{tmp_path / 'billing.db'}"
    assert [settings.port(s) for s in ("auth", "tasks", "billing", "analytics")] == [
        8000,
        8001,
        8002,
        8003,
    ]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "ATES_TIMEZONE: unknown time zone 'Mars/Olympus'"),
        (
            {"billing_database_url": "mysql://x/y"},
            "ATES_BILLING_DATABASE_URL: unsupported database",
        ),
        ({"tasks_database_url": "::::"}, "ATES_TASKS_DATABASE_URL: not a database URL"),
        ({"broker_url": "redis://r:6379"}, "ATES_BROKER_URL: not a broker URL"),
        ({"port_base": "eighty"}, "ATES_PORT_BASE:"),
        ({"environment": "production"}, "ATES_SECRET_KEY: too weak for production"),
    ],
)
def test_a_bad_setting_is_named_in_one_line(values: dict[str, object], message: str) -> None:
    text = _error(**values)
    assert message in text
    assert "\n" not in text


@pytest.mark.parametrize(
    ("written", "used"),
    [
        ("postgresql://ates:pw@db:5432/tasks", "postgresql+asyncpg://ates:pw@db:5432/tasks"),
        ("postgres://ates:pw@db/tasks", "postgresql+asyncpg://ates:pw@db/tasks"),
        (
            "postgres://ates:p%40ss@db/tasks?sslmode=require",
            "postgresql+asyncpg://ates:p%40ss@db/tasks?ssl=require",
        ),
        ("postgresql+psycopg2://ates@db/tasks", "postgresql+asyncpg://ates@db/tasks"),
        ("postgresql+asyncpg://ates@db/tasks", "postgresql+asyncpg://ates@db/tasks"),
        ("sqlite:////srv/ates/tasks.db", "sqlite+aiosqlite:////srv/ates/tasks.db"),
        ("sqlite+aiosqlite:///var/tasks.db", "sqlite+aiosqlite:///var/tasks.db"),
    ],
)
def test_database_urls_are_taken_as_people_write_them(written: str, used: str) -> None:
    settings = Settings(tasks_database_url=written)
    assert settings.database_url("tasks") == used


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATES_TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("ATES_PORT_BASE", "9100")
    settings = Settings()
    assert (settings.timezone, settings.port("analytics")) == ("Europe/Berlin", 9103)


STRONG = "FsnOao9MRusgunSo3DEFzKjwi9MOmyzkwdjEkjidIGY"  # secrets.token_urlsafe(32)


@pytest.mark.parametrize(
    "key",
    [
        "",
        "short",
        "dev-only-insecure-secret",
        "dev-only-insecure-secretdev-only-insecure-secret",  # a default, padded
        "a" * 64,
        "changeme-changeme-changeme-changeme",
        "0123456789abcdef0123456789abcdef",  # 32 characters, 16 bytes of hex
        "abababababababababababababababababababab",
    ],
)
def test_production_refuses_a_weak_secret_key_naming_the_variable(key: str) -> None:
    text = _error(environment="production", secret_key=key)
    assert text.startswith("ATES_SECRET_KEY: too weak for production")
    assert "32 random bytes" in text
    assert "\n" not in text
    assert key not in text or not key, "the message never repeats the key"


@pytest.mark.parametrize(
    "key",
    [
        STRONG,
        "9857e48a8e68f257995dd6848d3e3456b7da33b71f1d4e81da136d25cc07f0a5",  # 32 bytes hex
        "MBdbnByeQomjMXoOo29yyoK+ExkP7E3lPRXD/oecezc=",  # 32 bytes base64
    ],
)
def test_production_accepts_a_random_32_byte_key(key: str) -> None:
    assert Settings(environment="production", secret_key=key).secret_key == key


def test_development_keeps_its_default_key() -> None:
    assert Settings().secret_key


def test_the_secret_key_is_not_in_the_settings_repr() -> None:
    assert STRONG not in repr(Settings(secret_key=STRONG))

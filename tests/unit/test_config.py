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
        ({"billing_database_url": "mysql://x/y"}, "ATES_BILLING_DATABASE_URL: unsupported driver"),
        ({"tasks_database_url": "::::"}, "ATES_TASKS_DATABASE_URL: not a database URL"),
        ({"broker_url": "redis://r:6379"}, "ATES_BROKER_URL: not a broker URL"),
        ({"port_base": "eighty"}, "ATES_PORT_BASE:"),
        ({"environment": "production"}, "ATES_SECRET_KEY must be set in production"),
    ],
)
def test_a_bad_setting_is_named_in_one_line(values: dict[str, object], message: str) -> None:
    text = _error(**values)
    assert message in text
    assert "\n" not in text


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATES_TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("ATES_PORT_BASE", "9100")
    settings = Settings()
    assert (settings.timezone, settings.port("analytics")) == ("Europe/Berlin", 9103)

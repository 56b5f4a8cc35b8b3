from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ates.config import Settings
from tests.support import Harness, TokenFactory, make_settings, service_harness


@pytest.fixture
def db_settings(tmp_path: Path) -> Settings:
    """Settings for tests that need the database but no broker."""
    return make_settings(tmp_path / "data", None)


@pytest.fixture
async def tasks(db_settings: Settings, tokens: TokenFactory) -> AsyncIterator[Harness]:
    """The tasks service in-process on a real SQLite file, without a broker: what it
    would publish stays in its outbox, where the tests read it."""
    async with service_harness("tasks", db_settings, tokens, messaging=False) as harness:
        yield harness

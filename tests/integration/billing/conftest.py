"""Fixtures for billing's integration tests: a migrated database per test (copied from one
migrated template, so Alembic runs once per session) and its consumer."""

from __future__ import annotations

import asyncio
import random
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ates.config import Settings
from ates.platform import migrations
from ates.platform.db import Database
from tests.integration.billing.books import Books
from tests.support import Harness, TokenFactory, make_settings, service_harness


@pytest.fixture(scope="session")
def billing_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("billing-template") / "billing.db"

    async def _migrate() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        await migrations.upgrade("billing", db)
        await db.dispose()

    asyncio.run(_migrate())
    return path


def copy_database(template: Path, target: Path) -> Database:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, target)
    return Database(f"sqlite+aiosqlite:///{target}")


@pytest.fixture
async def billing_db(billing_template: Path, tmp_path: Path) -> AsyncIterator[Database]:
    db = copy_database(billing_template, tmp_path / "billing.db")
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
def books(billing_db: Database) -> Books:
    return Books(billing_db, random.Random(6))


@pytest.fixture
def offline_settings(tmp_path: Path) -> Settings:
    """Settings for tests of the HTTP side alone (no broker started)."""
    return make_settings(tmp_path / "data", None)


@pytest.fixture
async def billing(offline_settings: Settings, tokens: TokenFactory) -> AsyncIterator[Harness]:
    """The billing app in-process, without messaging; events go in through ``feed``."""
    async with service_harness("billing", offline_settings, tokens, messaging=False) as harness:
        yield harness


@pytest.fixture
def feed(billing: Harness) -> Books:
    """Deliver events to the running billing app's database, as its consumer would."""
    return Books(billing.db, random.Random(7))

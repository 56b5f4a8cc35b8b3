from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ates.platform import migrations
from ates.platform.runtime import Runtime, build_runtime
from ates.services.registry import spec
from tests.support import TokenFactory, make_settings


@pytest.fixture
async def runtime(tmp_path: Path, tokens: TokenFactory) -> AsyncIterator[Runtime]:
    """The notifications service's runtime on a migrated SQLite file, with no background
    job running: tests apply events and run the sender themselves."""
    settings = make_settings(tmp_path / "data", None)
    runtime = build_runtime(spec("notifications"), settings, verifier=tokens.verifier())
    await migrations.upgrade("notifications", runtime.db)
    try:
        yield runtime
    finally:
        await runtime.db.dispose()

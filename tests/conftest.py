from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ates.config import Settings
from ates.platform.broker.nats.server import EmbeddedNats
from tests.support import TokenFactory, make_settings

# Settings come from fixtures, never from the developer's shell.
for _name in [n for n in os.environ if n.startswith("ATES_")]:
    del os.environ[_name]


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    """A fresh bundled NATS server with JetStream for one test."""
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nats_url(nats_server: EmbeddedNats) -> str:
    return nats_server.url


@pytest.fixture(scope="session")
def tokens() -> TokenFactory:
    return TokenFactory()


@pytest.fixture
def settings(tmp_path: Path, nats_url: str) -> Settings:
    return make_settings(tmp_path / "data", nats_url)

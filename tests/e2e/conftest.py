"""Fixtures for end-to-end tests: one real system per test module (``ates up`` in a
subprocess) and, for browser tests, Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.stack import Stack, start_stack

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole system, started once for the tests of one module."""
    running = start_stack(tmp_path_factory.mktemp("ates") / "var")
    running.drain()
    try:
        yield running
    finally:
        running.stop()


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"no browser at {CHROMIUM}: apt-get install chromium"
    if os.environ.get("CI") == "true":
        pytest.fail(message)  # in CI a missing browser is a broken image, not a skip
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium (Debian's; no browser is ever downloaded)."""
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where browser tests leave screenshots of the pages they saw (``E2E_SCREENSHOTS``
    to keep them somewhere fixed)."""
    chosen = os.environ.get("E2E_SCREENSHOTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder

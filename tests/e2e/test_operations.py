"""The operator's pages in a browser, against a system started with ``ates up``: a message
no consumer can apply arrives; ``ates status`` (nothing but the data directory) and the
status page count it among the dead letters; the dead-letter console shows it and
Discard takes it off. Screenshots at desktop and phone width for docs/operations.md
(``E2E_SCREENSHOTS=docs/tour pytest tests/e2e/test_operations.py`` takes them again)."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect
from typer.testing import CliRunner

from ates import stackfile
from ates.cli import app as cli
from ates.platform.broker import OutgoingMessage, create_broker
from ates.platform.events import Event
from tests.e2e.browsing import (
    DESKTOP,
    PHONE,
    OpenAs,
    csp_violations,
    flash,
    open_as,
    sideways_overflow,
)
from tests.e2e.stack import Stack

__all__ = ["csp_violations", "open_as"]  # fixtures this module uses

pytestmark = pytest.mark.e2e


def announce_nobody(stack: Stack) -> str:
    """Publish an ``AccountCreated`` whose data breaks its schema (no username, no role):
    every consumer of people dead-letters it at once. Returns its event id."""
    event = Event(
        event_name="AccountCreated", event_version=1, producer="e2e", data={"public_id": "?"}
    )
    running = stackfile.find(stack.data_dir)
    assert running is not None

    async def publish() -> None:
        broker = create_broker(running.broker_url)
        await broker.connect()
        try:
            message = OutgoingMessage(
                str(event.event_id), "accounts", "AccountCreated", event.to_json().encode()
            )
            await broker.publish([message])
        finally:
            await broker.close()

    with ThreadPoolExecutor(1) as thread:  # Playwright's loop runs in this one
        thread.submit(asyncio.run, publish()).result()
    return str(event.event_id)


def ates_status(stack: Stack) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["status", "--json", "--data-dir", str(stack.data_dir)])
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_status_and_the_dead_letter_console(
    open_as: OpenAs, stack: Stack, screenshots: Path
) -> None:
    event_id = announce_nobody(stack)
    deadline = time.monotonic() + 30
    while True:  # until every consumer of people has given up on it
        report = ates_status(stack)
        pending = {s["service"]: s["dead_letters"]["pending"] for s in report["services"]}
        if all(pending[name] == 1 for name in ("tasks", "billing", "analytics", "notifications")):
            break
        assert time.monotonic() < deadline, f"not dead-lettered everywhere: {pending}"
        time.sleep(0.5)  # the poll's interval (each look signs in afresh)
    assert pending["auth"] == 0  # auth consumes nothing
    assert {s["status"] for s in report["services"]} == {"ok"}
    assert {s["domain"] for s in report["streams"]} >= {"accounts", "tasks", "billing"}

    for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page = open_as("admin", "notifications", "/admin/dead-letters", viewport)
        row = page.locator("tr[data-letter]")
        expect(row).to_contain_text(event_id)
        expect(row).to_contain_text("invalid")
        page.get_by_text("Payload").click()
        expect(row.get_by_test_id("payload")).to_contain_text('"public_id": "?"')
        assert width == "desktop" or sideways_overflow(page) == 0
        page.screenshot(path=str(screenshots / f"ops-dead-letters.{width}.png"), full_page=True)

        page.get_by_role("link", name="Operations").click()
        expect(page.get_by_role("heading", name="Status of notifications")).to_be_visible()
        page.get_by_role("navigation", name="Operations").get_by_role("link", name="tasks").click()
        expect(page.get_by_role("heading", name="Status of tasks")).to_be_visible()
        expect(page.get_by_test_id("dead-letters")).to_contain_text("1 pending")
        assert width == "desktop" or sideways_overflow(page) == 0
        page.screenshot(path=str(screenshots / f"ops-status.{width}.png"), full_page=True)

    # Discard, as a person would: the letter leaves the pending list
    page = open_as("admin", "notifications", "/admin/dead-letters")
    page.get_by_role("button", name="Discard").click()
    expect(flash(page)).to_contain_text("discarded")
    expect(page.get_by_test_id("none")).to_be_visible()
    pending = {s["service"]: s["dead_letters"]["pending"] for s in ates_status(stack)["services"]}
    assert pending["notifications"] == 0 and pending["tasks"] == 1

"""What the browser tests share: signing in through auth's single sign-on page as a demo
person, waiting for what arrives through events, screenshots at desktop and phone width,
and a check that no page breaks the services' Content-Security-Policy.

A test module imports the fixtures it uses from here (``open_as``, ``csp_violations``);
importing a fixture into a module is how pytest makes it available there.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, ViewportSize, expect

from ates.stack import DEMO_PEOPLE
from tests.e2e.stack import Stack

USERNAME_OF = {full_name: username for username, _, full_name in DEMO_PEOPLE}
EVENTS_TIMEOUT = 30.0  # seconds for an event to travel to another service
DESKTOP = ViewportSize(width=1200, height=800)
PHONE = ViewportSize(width=390, height=844)  # an iPhone 12-14's CSS pixels

OpenAs = Callable[..., Page]


@pytest.fixture(autouse=True)
def csp_violations(browser: Browser, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every page of every context a test opens passes the services' Content-Security-
    Policy: Chromium reports each violation on the console."""
    found: list[str] = []
    new_context = browser.new_context

    def watched(*args: object, **kwargs: object) -> BrowserContext:
        context = new_context(*args, **kwargs)  # type: ignore[arg-type]
        context.on(
            "console",
            lambda message: (
                found.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )
        return context

    monkeypatch.setattr(browser, "new_context", watched)
    yield found
    assert not found, "\n".join(found)


@pytest.fixture
def open_as(browser: Browser, stack: Stack) -> Iterator[OpenAs]:
    """``open_as(username, service, path, viewport=DESKTOP)``: a fresh browser (no
    cookies) that opens a dashboard page, is sent to the sign-in page, signs in and lands
    on the page."""
    contexts = []

    def _open(
        username: str, service: str, path: str = "/", viewport: ViewportSize | None = None
    ) -> Page:
        context = browser.new_context(viewport=viewport or DESKTOP)
        contexts.append(context)
        page = context.new_page()
        page.goto(stack.url(service) + path)
        sign_in(page, stack, username)
        page.wait_for_load_state()
        return page

    yield _open
    for context in contexts:
        context.close()


def sign_in(page: Page, stack: Stack, username: str, password: str | None = None) -> None:
    """On auth's sign-in page: fill the form and send it."""
    expect(page).to_have_url(re.compile(re.escape(stack.url("auth")) + r"/login\b"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password or stack.logins[username][1])
    page.get_by_role("button", name="Sign in").click()


def reload_until(page: Page, locator: Locator, timeout: float = EVENTS_TIMEOUT) -> None:
    """Reload ``page`` until ``locator`` is visible: for what arrives through events."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            expect(locator).to_be_visible(timeout=1000)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        page.reload()


def shoot(page: Page, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def flash(page: Page) -> Locator:
    return page.locator("p.flash")


def sideways_overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than its window (0: no sideways scroll)."""
    return int(
        page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    )

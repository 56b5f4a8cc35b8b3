"""The pages that answer people's next question, in Chromium against the real system:
finding tasks, a task's history after a shuffle, My notifications, the confirmation
before a shuffle, the styled 404, and every page at phone width without sideways
scrolling. The tour at the end saves a screenshot of every page at desktop and phone
width (``E2E_SCREENSHOTS=docs/tour`` refreshes the ones docs/tour.md shows)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.e2e.browsing import (
    DESKTOP,
    PHONE,
    USERNAME_OF,
    OpenAs,
    csp_violations,
    flash,
    open_as,
    reload_until,
    sideways_overflow,
    sign_in,
)
from tests.e2e.stack import Stack

__all__ = ["csp_violations", "open_as"]  # fixtures this module uses

pytestmark = pytest.mark.e2e


def _create(stack: Stack, username: str, title: str, jira_id: str | None = None) -> dict[str, str]:
    with stack.api("tasks", username) as api:
        made = api.post("/api/tasks", json={"title": title, "jira_id": jira_id})
    assert made.status_code == 201, made.text
    task: dict[str, str] = made.json()
    return task


def _name_of(stack: Stack, public_id: str) -> str:
    with stack.api("auth", "admin") as api:
        return str(api.get(f"/api/users/{public_id}").json()["full_name"])


def test_finding_a_task_by_title_and_by_assignee_name(open_as: OpenAs, stack: Stack) -> None:
    marker = uuid.uuid4().hex[:6]
    beak = _create(stack, "worker", f"Sharpen the beak {marker}", "POPUG-77")
    perch = _create(stack, "worker", f"Polish the perch {marker}")
    page = open_as("manager", "tasks")

    # by a word of the title, any case, and by the jira id
    page.get_by_label("Search").fill(f"BEAK {marker}")
    page.get_by_role("button", name="Find").click()
    rows = page.locator("tr[data-task]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(f"Sharpen the beak {marker}")
    expect(page.get_by_test_id("where")).to_have_text("Tasks 1\u20131 of 1 · page 1 of 1")
    page.get_by_label("Search").fill("popug-77")
    page.get_by_role("button", name="Find").click()
    expect(page.locator("tr[data-task]", has_text=f"Sharpen the beak {marker}")).to_be_visible()

    # by the assignee's name, picked from the people, not typed as an id
    name = _name_of(stack, perch["assignee_public_id"])
    page.get_by_label("Search").fill(marker)
    page.get_by_label("Assignee").select_option(label=name)
    page.get_by_role("button", name="Find").click()
    expect(page.locator("tr[data-task]", has_text=f"Polish the perch {marker}")).to_be_visible()
    for cell in page.locator("td[data-label=Assignee]").all():
        expect(cell).to_have_text(name)
    if beak["assignee_public_id"] != perch["assignee_public_id"]:
        expect(page.locator("tr[data-task]", has_text="Sharpen the beak")).to_have_count(0)
    assert perch["assignee_public_id"] in page.url  # the filter is in the address


def test_the_shuffle_asks_first_and_the_task_page_tells_the_history(
    open_as: OpenAs, stack: Stack
) -> None:
    title = f"Count the millet {uuid.uuid4().hex[:6]}"
    task = _create(stack, "manager", title, "POPUG-88")
    first = _name_of(stack, task["assignee_public_id"])
    page = open_as("manager", "tasks")

    page.get_by_role("button", name="Shuffle…").click()
    expect(page.get_by_role("heading", name="Shuffle every open task?")).to_be_visible()
    expect(page.get_by_test_id("what-happens")).to_contain_text("charges its fee again")
    page.get_by_role("button", name=re.compile(r"^Shuffle \d+ tasks?$")).click()
    expect(flash(page)).to_contain_text("Shuffled:")

    page.get_by_label("Search").fill(title)
    page.get_by_role("button", name="Find").click()
    page.get_by_role("link", name=title).click()
    expect(page.get_by_role("heading", name=title)).to_be_visible()
    history = page.get_by_test_id("history").locator("li")
    expect(history).to_have_count(2)
    expect(history.nth(0)).to_contain_text(f"created by Max Manager, assigned to {first}")
    with stack.api("tasks", "manager") as api:
        now = api.get(f"/api/tasks/{task['public_id']}").json()["assignee_public_id"]
    expect(history.nth(1)).to_contain_text(f"shuffled from {first} to {_name_of(stack, now)}")
    expect(page.get_by_test_id("assignee")).to_have_text(_name_of(stack, now))
    # and on to its money in accounting
    page.get_by_role("link", name="Its money in accounting").click()
    expect(page.get_by_role("heading", name=f"[POPUG-88] {title}")).to_be_visible()


def test_my_notifications_for_a_worker_and_everyone_s_for_an_admin(
    open_as: OpenAs, stack: Stack
) -> None:
    title = f"Feed the flock {uuid.uuid4().hex[:6]}"
    task = _create(stack, "admin", title)
    name = _name_of(stack, task["assignee_public_id"])
    username = USERNAME_OF[name]  # tasks go to the demo workers only

    page = open_as(username, "notifications")
    expect(page.get_by_role("heading", name="My notifications")).to_be_visible()
    notice = page.locator("tr[data-notice]", has_text=title)
    reload_until(page, notice)
    expect(notice).to_contain_text(f"{name}, the task “{title}” is assigned to you.")
    expect(notice).to_contain_text("email")
    expect(notice).to_contain_text("slack")
    expect(notice).to_contain_text("sms")
    for row in page.locator("tr[data-notice]").all():  # only theirs
        expect(row).to_contain_text(name)

    # linked from the top navigation of every dashboard
    admin = open_as("admin", "billing")
    admin.get_by_role("link", name="Notifications").click()
    expect(admin.get_by_role("heading", name="Notifications", exact=True)).to_be_visible()
    expect(admin.locator("tr[data-notice]", has_text=title)).to_contain_text(name)
    receivers = {cell.inner_text() for cell in admin.locator("td[data-label=To]").all()}
    assert len(receivers) > 1, f"an admin sees everyone's notices, saw {receivers}"


def test_an_unknown_page_is_a_styled_404(open_as: OpenAs, stack: Stack) -> None:
    page = open_as("worker", "tasks")
    page.goto(stack.url("billing") + "/")  # signed in there too (single sign-on)
    for url in (
        stack.url("tasks") + "/tasks/00000000-0000-4000-8000-000000000000",
        stack.url("billing") + "/no/such/page",
    ):
        answer = page.goto(url)
        assert answer is not None and answer.status == 404
        expect(page.get_by_role("heading", name="Not found")).to_be_visible()
        expect(page.get_by_role("link", name="My tasks")).to_be_visible()  # the header stays
        expect(page.get_by_test_id("who")).to_contain_text("Polly Popug")
    with httpx.Client() as api:  # an API client still gets JSON
        missing = api.get(stack.url("tasks") + "/no/such/page")
    assert missing.json() == {"detail": "Not Found"}


# --- every page, at desktop and phone width -------------------------------------------------

# (file name, person, service, path): every page a person can reach. {task} is a task.
PAGES = [
    ("auth-people", "admin", "auth", "/"),
    ("auth-person", "admin", "auth", "/people/{polly}"),
    ("auth-reset-password", "admin", "auth", "/people/{polly}/password"),
    ("auth-profile", "worker", "auth", "/"),
    ("tasks-mine", "worker", "tasks", "/mine"),
    ("tasks-all", "manager", "tasks", "/all"),
    ("tasks-task", "worker", "tasks", "/tasks/{task}"),
    ("tasks-shuffle", "manager", "tasks", "/shuffle"),
    ("tasks-not-found", "worker", "tasks", "/no/such/page"),
    ("billing-my-account", "worker", "billing", "/me"),
    ("billing-company", "accountant", "billing", "/company"),
    ("billing-day", "accountant", "billing", "/days/{today}"),
    ("billing-account", "accountant", "billing", "/accounts/{polly}"),
    ("billing-task", "accountant", "billing", "/tasks/{task}"),
    ("analytics", "admin", "analytics", "/"),
    ("analytics-refused", "worker", "analytics", "/"),
    ("notifications-mine", "worker", "notifications", "/"),
    ("notifications-everyone", "admin", "notifications", "/"),
    ("api-docs", "worker", "tasks", "/docs"),
]


def test_every_page_fits_a_phone_and_is_photographed(
    browser: Browser, stack: Stack, screenshots: Path
) -> None:
    # a little history to look at: tasks by several people, a shuffle, a completion
    for creator, title in [
        ("worker", "Tidy the nest"),
        ("manager", "Sort the millet"),
        ("admin", "Oil the cage door"),
        ("worker2", "Count the feathers"),
    ]:
        _create(stack, creator, title, f"POPUG-{len(title)}")
    with stack.api("tasks", "manager") as api:
        assert api.post("/api/tasks/shuffle").status_code == 200
        task = api.get("/api/tasks", params={"assignee": "all", "q": "Tidy the nest"}).json()[0]
    worker = USERNAME_OF[_name_of(stack, task["assignee_public_id"])]
    with stack.api("tasks", worker) as api:
        done = api.post(f"/api/tasks/{task['public_id']}/complete")
        assert done.status_code == 200, done.text
    with stack.api("auth", "admin") as api:
        people = {p["username"]: p["public_id"] for p in api.get("/api/users").json()}
    with stack.api("billing", "accountant") as api:
        today = api.get("/api/dashboard").json()["date"]
    values = {"task": task["public_id"], "polly": people[worker], "today": today}
    seen_by = {"worker": worker}  # the worker pages are shown as the task's assignee

    # one signed-in browser per person and width, reused page after page
    pages: dict[tuple[str, str], Page] = {}
    wide: list[str] = []
    try:
        for name, person, service, path in PAGES:
            person = seen_by.get(person, person)
            for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
                page = pages.get((person, width))
                if page is None:
                    page = _signed_in(browser, stack, person, viewport)
                    pages[(person, width)] = page
                page.goto(stack.url(service) + path.format(**values))
                page.wait_for_load_state("networkidle")
                if width == "phone" and sideways_overflow(page) > 0:
                    wide.append(f"{name}: {sideways_overflow(page)} px too wide")
                if width == "phone" and page.locator("table").count():
                    # tables become stacked rows: each row's cells one under another
                    display = page.locator("table tr").first.evaluate(
                        "row => getComputedStyle(row).display"
                    )
                    assert display == "block", f"{name}: a table row is {display} on a phone"
                page.screenshot(path=str(screenshots / f"{name}.{width}.png"), full_page=True)
    finally:
        for page in pages.values():
            page.context.close()
    assert not wide, "sideways scrolling at 390 px:\n" + "\n".join(wide)
    assert len(list(screenshots.glob("*.phone.png"))) >= len(PAGES)


def _signed_in(browser: Browser, stack: Stack, username: str, viewport: ViewportSize) -> Page:
    page = browser.new_context(viewport=viewport).new_page()
    page.goto(stack.url("tasks") + "/mine")
    sign_in(page, stack, username)
    expect(page.get_by_role("heading", name="My tasks")).to_be_visible()
    return page


def test_sign_in_and_signed_out_pages_fit_a_phone(
    browser: Browser, stack: Stack, screenshots: Path
) -> None:
    for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        page.goto(stack.url("tasks") + "/")
        page.wait_for_load_state("networkidle")
        assert sideways_overflow(page) == 0
        page.screenshot(path=str(screenshots / f"auth-sign-in.{width}.png"), full_page=True)
        sign_in(page, stack, "worker3")
        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_role("heading", name="You have signed out")).to_be_visible()
        assert sideways_overflow(page) == 0
        page.screenshot(path=str(screenshots / f"auth-signed-out.{width}.png"), full_page=True)
        context.close()

"""The dashboards as people use them: Chromium against the real system (``ates up``).

Every scenario signs in through auth's single sign-on page, as the demo people whose
passwords ``ates up`` wrote to ``demo-logins.txt``. What happens through events (the fee,
the reward, analytics' figures) is awaited by reloading the page until it shows, as a
person would. Screenshots of each main page go to the ``screenshots`` folder.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from ates.platform.money import format_cents
from tests.e2e.browsing import (
    USERNAME_OF,
    OpenAs,
    csp_violations,
    flash,
    open_as,
    reload_until,
    shoot,
    sign_in,
)
from tests.e2e.stack import Stack

__all__ = ["csp_violations", "open_as"]  # fixtures this module uses

pytestmark = pytest.mark.e2e
MONEY = re.compile(r"-?\d+\.\d\d \$")


# --- sign-in ------------------------------------------------------------------------------


def test_a_visitor_signs_in_once_for_every_dashboard(
    browser: Browser, stack: Stack, screenshots: Path
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(stack.url("tasks") + "/")

    # sent to auth's single sign-on page, which has the two fields
    expect(page).to_have_url(re.compile(re.escape(stack.url("auth")) + r"/login\b"))
    expect(page.locator("input[name=username]")).to_be_visible()
    expect(page.locator("input[name=password]")).to_have_attribute("type", "password")
    shoot(page, screenshots, "01-sign-in")

    sign_in(page, stack, "worker")
    expect(page).to_have_url(stack.url("tasks") + "/")
    expect(page.get_by_role("heading", name="My tasks")).to_be_visible()
    # the header names the person and their role
    expect(page.get_by_test_id("who")).to_contain_text("Polly Popug")
    expect(page.get_by_test_id("who")).to_contain_text("worker")

    # the next dashboard does not ask again
    page.goto(stack.url("billing") + "/")
    expect(page).to_have_url(stack.url("billing") + "/")
    expect(page.get_by_role("heading", name="My account")).to_be_visible()
    context.close()


def test_a_wrong_password_says_so_and_keeps_the_person_out(
    browser: Browser, stack: Stack, screenshots: Path
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(stack.url("tasks") + "/")
    sign_in(page, stack, "worker2", password="not-the-password")

    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    expect(page).to_have_url(re.compile(re.escape(stack.url("auth")) + r"/login\b"))
    expect(page.locator("input[name=username]")).to_have_value("worker2")
    shoot(page, screenshots, "02-wrong-password")

    # and the right one still works from the same page
    page.fill("input[name=password]", stack.logins["worker2"][1])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(stack.url("tasks") + "/")
    context.close()


# --- a task's life ------------------------------------------------------------------------


def test_a_task_is_created_done_and_paid_for(
    open_as: OpenAs, stack: Stack, screenshots: Path
) -> None:
    title = f"Polish the perch {uuid.uuid4().hex[:6]}"

    # a worker creates a task; it lands on some worker
    creator = open_as("worker", "tasks")
    creator.fill("input[name=title]", title)
    creator.fill("input[name=jira_id]", "POPUG-7")
    creator.fill("textarea[name=description]", "Both perches, with the soft brush.")
    creator.get_by_role("button", name="Create").click()
    created = flash(creator)
    expect(created).to_contain_text(f"Task “{title}” created and assigned to ")
    assignee_name = created.inner_text().rsplit(" assigned to ", 1)[1].rstrip(".")
    assert assignee_name in USERNAME_OF, f"assigned to {assignee_name!r}, not a demo worker"
    assignee = USERNAME_OF[assignee_name]

    # the assignee sees it among their open tasks
    tasks = open_as(assignee, "tasks", "/mine")
    row = tasks.locator("tr", has_text=title)
    expect(row).to_be_visible()
    expect(row).to_contain_text("POPUG-7")
    expect(row).to_contain_text("open")
    task_id = row.get_attribute("data-task")
    assert task_id
    shoot(tasks, screenshots, "03-my-tasks")

    # billing charged the assignment fee: it shows in their audit log of today
    with stack.api("billing", assignee) as billing_api:
        price = billing_api.get(f"/api/tasks/{task_id}/price")
    assert price.status_code == 200, price.text
    fee, reward = price.json()["assign_fee_cents"], price.json()["reward_cents"]
    books = tasks.context.new_page()
    books.goto(stack.url("billing") + "/")  # signed in already: single sign-on
    expect(books.get_by_role("heading", name="My account")).to_be_visible()
    fee_row = books.locator("tr[data-transaction]", has_text=f"assigned: [POPUG-7] {title}")
    reload_until(books, fee_row)
    expect(fee_row).to_contain_text(format_cents(fee))
    shoot(books, screenshots, "04-billing-after-fee")

    # Done
    row.get_by_role("button", name="Done").click()
    expect(flash(tasks)).to_have_text(f"“{title}” is done.")
    expect(tasks.locator("tr", has_text=title)).to_have_count(0)
    tasks.get_by_label("Status").select_option("done")
    tasks.get_by_role("button", name="Find").click()
    expect(tasks.locator("tr", has_text=title)).to_contain_text("done")

    # and the reward arrives
    reward_row = books.locator("tr[data-transaction]", has_text=f"completed: [POPUG-7] {title}")
    reload_until(books, reward_row)
    expect(reward_row).to_contain_text(format_cents(reward))
    expect(books.locator("[data-balance]")).to_have_text(MONEY)
    shoot(books, screenshots, "05-billing-after-reward")


# --- analytics ------------------------------------------------------------------------


def test_an_admin_sees_analytics_that_agree_with_billing(
    open_as: OpenAs, stack: Stack, screenshots: Path
) -> None:
    page = open_as("admin", "analytics")
    expect(page.get_by_role("heading", name="Analytics", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Most expensive task")).to_be_visible()
    expect(page.get_by_test_id("negative-count")).to_have_text(re.compile(r"^\d+$"))

    with stack.api("billing", "accountant") as billing_api:
        earned = billing_api.get("/api/dashboard").json()["management_earnings_cents"]
    reload_until(page, page.get_by_test_id("earnings").filter(has_text=format_cents(earned)))
    shoot(page, screenshots, "06-analytics")


def test_a_worker_is_told_analytics_is_for_admins_only(open_as: OpenAs, screenshots: Path) -> None:
    page = open_as("worker3", "analytics")
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(page.locator("main")).to_contain_text("admins only")
    expect(page.get_by_test_id("earnings")).to_have_count(0)
    shoot(page, screenshots, "07-analytics-refused")


# --- the company view and the shuffle -----------------------------------------------------


def test_an_accountant_sees_the_company_books(
    open_as: OpenAs, stack: Stack, screenshots: Path
) -> None:
    page = open_as("accountant", "billing")
    expect(page.get_by_role("heading", name="Accounting")).to_be_visible()
    with stack.api("billing", "accountant") as billing_api:
        earned = billing_api.get("/api/dashboard").json()["management_earnings_cents"]
    expect(page.locator("[data-today-earnings]")).to_have_text(format_cents(earned))
    expect(page.locator("tr[data-owner]", has_text="Polly Popug")).to_be_visible()
    shoot(page, screenshots, "08-billing-company")


def test_the_manager_shuffles_and_is_told_how_many_tasks_moved(
    open_as: OpenAs, stack: Stack, screenshots: Path
) -> None:
    with stack.api("tasks", "manager") as tasks_api:
        made = tasks_api.post("/api/tasks", json={"title": "Sort the millet", "description": ""})
        assert made.status_code == 201, made.text
        open_now = tasks_api.get("/api/tasks", params={"status": "open", "assignee": "all"})
    count = len(open_now.json())
    assert count >= 1

    page = open_as("manager", "tasks")  # a manager lands on All tasks
    expect(page).to_have_url(stack.url("tasks") + "/all")
    expect(page.get_by_role("heading", name="All tasks")).to_be_visible()
    page.get_by_role("button", name="Shuffle…").click()
    # the confirmation says what will happen, and Cancel changes nothing
    expect(page.get_by_role("heading", name="Shuffle every open task?")).to_be_visible()
    noun = "task" if count == 1 else "tasks"
    expect(page.get_by_test_id("what-happens")).to_contain_text(
        f"This reassigns {count} open {noun}"
    )
    expect(page.get_by_test_id("what-happens")).to_contain_text(
        "Each assignment charges its fee again"
    )
    page.get_by_role("link", name="Cancel").click()
    expect(page).to_have_url(stack.url("tasks") + "/all")
    expect(flash(page)).to_have_count(0)
    page.get_by_role("button", name="Shuffle…").click()
    page.get_by_role("button", name=f"Shuffle {count} {noun}").click()
    expect(flash(page)).to_have_text(f"Shuffled: {count} open {noun} reassigned.")
    expect(page).to_have_url(stack.url("tasks") + "/all")
    shoot(page, screenshots, "09-shuffled")


def test_a_worker_has_no_shuffle_button(open_as: OpenAs) -> None:
    page = open_as("worker", "tasks")
    expect(page.get_by_role("link", name=re.compile("All tasks"))).to_have_count(0)
    page.goto(page.url.rstrip("/") + "/all")
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(page.get_by_role("button", name="Shuffle")).to_have_count(0)


# --- logout -------------------------------------------------------------------------------


def test_logging_out_signs_out_of_every_dashboard(
    open_as: OpenAs, stack: Stack, screenshots: Path
) -> None:
    page = open_as("worker", "tasks")
    page.goto(stack.url("billing") + "/")
    expect(page.get_by_role("heading", name="My account")).to_be_visible()

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="You have signed out")).to_be_visible()
    shoot(page, screenshots, "10-signed-out")
    # the page stays; its link leads back to the dashboard, which asks for a sign-in
    page.get_by_role("link", name="Sign in again").click()
    expect(page).to_have_url(re.compile(re.escape(stack.url("auth")) + r"/login\b"))

    for service in ("tasks", "billing"):
        page.goto(stack.url(service) + "/")
        expect(page).to_have_url(re.compile(re.escape(stack.url("auth")) + r"/login\b"))
        expect(page.locator("input[name=password]")).to_be_visible()

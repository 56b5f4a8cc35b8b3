"""The task tracker's pages as a signed-in person uses them (session cookie as the login
flow leaves it): my tasks, the create form, Done, all tasks and Shuffle, flash messages."""

from __future__ import annotations

import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from ates.services.tasks.models import Task
from tests.integration.tasks.helpers import announce, hire
from tests.support import Harness, TokenFactory, make_settings, page_cookie, service_harness

pytestmark = pytest.mark.integration


async def sign_in(harness: Harness, role: str, sub: str | None = None) -> None:
    harness.client.cookies.clear()
    for name, value in (await page_cookie(harness.runtime, role, sub)).items():
        # the domain the session middleware's own Set-Cookie gets, so it replaces this one
        harness.client.cookies.set(name, value, domain="tasks.local")


async def submit(harness: Harness, path: str, data: dict[str, str] | None = None) -> str:
    """Post a form and follow the redirect, as a browser does; the page shown after."""
    response = await harness.client.post(path, data=data or {})
    assert response.status_code == 303, response.text
    return (await harness.client.get(response.headers["location"])).text


async def _tasks(harness: Harness) -> list[Task]:
    async with harness.db.reader() as session:
        return list((await session.scalars(select(Task).order_by(Task.id))).all())


async def test_without_a_session_pages_send_you_to_sign_in(tasks: Harness) -> None:
    response = await tasks.client.get("/all?status=open")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fall%3Fstatus%3Dopen"


async def test_a_worker_creates_a_task_and_completes_their_own(tasks: Harness) -> None:
    polly = await hire(tasks.runtime, name="Polly Parrot")
    await sign_in(tasks, "worker", polly)

    page = await tasks.client.get("/")
    assert page.status_code == 200
    assert "My tasks" in page.text and 'action="/tasks"' in page.text
    assert "Nothing open for you." in page.text

    page = await submit(
        tasks, "/tasks", {"title": "Sharpen the beak", "jira_id": "POPUG-42", "description": "now"}
    )
    assert "Task “Sharpen the beak” created and assigned to Polly Parrot." in page
    assert "POPUG-42" in page
    (task,) = await _tasks(tasks)
    assert f'action="/tasks/{task.public_id}/complete"' in page  # the Done button

    page = await submit(tasks, f"/tasks/{task.public_id}/complete")
    assert "“Sharpen the beak” is done." in page
    assert "Nothing open for you." in page
    done = await tasks.client.get("/?show=done")
    assert "Sharpen the beak" in done.text
    assert "complete" not in done.text.split("<tbody>")[1]  # no Done button on a done task


async def test_mistakes_come_back_as_flash_messages(tasks: Harness) -> None:
    polly = await hire(tasks.runtime)
    await sign_in(tasks, "manager")
    page = await submit(tasks, "/tasks", {"title": "[POPUG-1] Fix the perch"})
    assert 'class="flash error"' in page
    assert "title: must not contain &#39;[&#39; or &#39;]&#39;" in page
    assert await _tasks(tasks) == []

    await submit(tasks, "/tasks", {"title": "Fix the perch"})
    (task,) = await _tasks(tasks)
    page = await submit(tasks, f"/tasks/{task.public_id}/complete")  # not the assignee
    assert "Not done. only the assignee can complete this task" in page

    await announce(tasks.runtime, "AccountDeactivated", {"public_id": polly})
    page = await submit(tasks, "/tasks", {"title": "Nobody to do it"})
    assert "Task not created. there is no active worker" in page
    assert len(await _tasks(tasks)) == 1


async def test_my_tasks_show_only_mine(tasks: Harness) -> None:
    polly = await hire(tasks.runtime, name="Polly Parrot")
    await hire(tasks.runtime, name="Kesha Popug")
    await sign_in(tasks, "manager")
    for i in range(10):
        await tasks.client.post("/tasks", data={"title": f"Task number {i}"})
    await sign_in(tasks, "worker", polly)
    page = await tasks.client.get("/")
    shown = set(re.findall(r"Task number \d", page.text))
    mine = {t.title for t in await _tasks(tasks) if t.assignee_public_id == polly}
    assert shown == mine


async def test_all_tasks_and_shuffle_are_for_admins_and_managers(tasks: Harness) -> None:
    workers = [await hire(tasks.runtime, name=f"Worker {i}") for i in range(3)]
    await sign_in(tasks, "worker", workers[0])
    assert "All tasks and shuffle" not in (await tasks.client.get("/")).text
    refused = await tasks.client.get("/all")
    assert refused.status_code == 403
    assert "This page is for admins and managers only." in refused.text
    assert (await tasks.client.post("/shuffle")).status_code == 403

    await sign_in(tasks, "admin")
    for i in range(4):
        await submit(tasks, "/tasks", {"title": f"Task {i}"})
    assert "All tasks and shuffle" in (await tasks.client.get("/")).text
    page = await tasks.client.get("/all")
    assert page.status_code == 200
    assert 'action="/shuffle"' in page.text
    assert all(f"Task {i}" in page.text for i in range(4))

    page = await submit(tasks, "/shuffle")
    assert "Shuffled: 4 open tasks reassigned." in page

    filtered = await tasks.client.get(f"/all?assignee={workers[1]}")
    theirs = [t for t in await _tasks(tasks) if t.assignee_public_id == workers[1]]
    assert len(re.findall(r"<tr data-task=", filtered.text)) == len(theirs)


async def test_long_lists_are_paged(tasks: Harness) -> None:
    worker = await hire(tasks.runtime)
    await sign_in(tasks, "worker", worker)
    for i in range(55):
        await tasks.client.post("/tasks", data={"title": f"Task {i}"})
    first = await tasks.client.get("/")
    assert len(re.findall(r"<tr data-task=", first.text)) == 50
    older = re.search(r'<a href="([^"]+)">Older tasks', first.text)
    assert older is not None
    second = await tasks.client.get(older.group(1).replace("&amp;", "&"))
    assert len(re.findall(r"<tr data-task=", second.text)) == 5
    assert "Older tasks" not in second.text


async def test_times_are_shown_in_the_business_time_zone(
    tmp_path: Path, tokens: TokenFactory
) -> None:
    settings = make_settings(tmp_path / "data", None, timezone="Asia/Tokyo")
    async with service_harness("tasks", settings, tokens, messaging=False) as harness:
        worker = await hire(harness.runtime)
        await sign_in(harness, "worker", worker)
        page = await submit(harness, "/tasks", {"title": "Fly"})
        (task,) = await _tasks(harness)
        tokyo = task.created_at.astimezone(ZoneInfo("Asia/Tokyo")).strftime("%d.%m.%Y %H:%M")
        utc = task.created_at.strftime("%d.%m.%Y %H:%M")
        assert tokyo in page
        assert utc not in page
        assert "Business time zone: Asia/Tokyo" in page


async def test_the_longest_description_fits_the_form_in_any_script(tasks: Harness) -> None:
    # 10,000 characters of CJK are about 90 KB once form-encoded: more than the 64 KiB a
    # JSON body may have, and still a form the page must take
    worker = await hire(tasks.runtime)
    await sign_in(tasks, "worker", worker)
    page = await submit(tasks, "/tasks", {"title": "Translate", "description": "鸚" * 10_000})
    assert "Task “Translate” created" in page
    (task,) = await _tasks(tasks)
    assert len(task.description) == 10_000

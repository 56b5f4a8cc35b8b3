"""The task tracker's pages as a signed-in person uses them (session cookie as the login
flow leaves it): my tasks, the create form, Done, all tasks and Shuffle, flash messages."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from ates.services.tasks.models import AssignmentRecord, Person, Task
from tests.integration.tasks.helpers import announce, hire, person_data
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

    landing = await tasks.client.get("/")  # a worker lands on their own tasks
    assert landing.status_code == 200
    assert "<h1>My tasks</h1>" in landing.text and 'action="/tasks"' in landing.text
    assert "Nothing open for you." in landing.text

    page = await submit(
        tasks,
        "/tasks",
        {"title": "Sharpen the beak", "jira_id": "POPUG-42", "description": "now", "back": "/"},
    )
    assert "Task “Sharpen the beak” created and assigned to Polly Parrot." in page
    assert "POPUG-42" in page
    (task,) = await _tasks(tasks)
    assert task.created_by_public_id == polly
    assert f'action="/tasks/{task.public_id}/complete"' in page  # the Done button
    assert f'href="/tasks/{task.public_id}"' in page  # the title links to the task page

    page = await submit(tasks, f"/tasks/{task.public_id}/complete", {"back": "/mine"})
    assert "“Sharpen the beak” is done." in page
    assert "Nothing open for you." in page
    done = await tasks.client.get("/mine?status=done")
    assert "Sharpen the beak" in done.text
    assert "complete" not in done.text.split("<tbody>")[1]  # no Done button on a done task


async def test_a_failed_create_keeps_what_was_typed_and_names_the_label(tasks: Harness) -> None:
    polly = await hire(tasks.runtime)
    await sign_in(tasks, "manager")
    response = await tasks.client.post(
        "/tasks",
        data={"title": "Fix the perch", "jira_id": "POPUG 1", "description": "mind the paint"},
    )
    assert response.status_code == 422
    assert 'class="flash error"' in response.text
    assert "Task not created. Jira id: must be one word" in response.text
    assert "jira_id" not in response.text.split('role="alert">')[1].split("</p>")[0]
    assert 'value="Fix the perch"' in response.text
    assert 'value="POPUG 1"' in response.text
    assert ">mind the paint</textarea>" in response.text
    assert await _tasks(tasks) == []

    brackets = await tasks.client.post("/tasks", data={"title": "[POPUG-1] Fix the perch"})
    assert "Title: must not contain &#39;[&#39; or &#39;]&#39;" in brackets.text
    assert "in the Jira id field" in brackets.text

    await submit(tasks, "/tasks", {"title": "Fix the perch"})
    (task,) = await _tasks(tasks)
    page = await submit(tasks, f"/tasks/{task.public_id}/complete")  # not the assignee
    assert "Not done. only the assignee can complete this task" in page

    await announce(tasks.runtime, "AccountDeactivated", {"public_id": polly})
    nobody = await tasks.client.post("/tasks", data={"title": "Nobody to do it"})
    assert nobody.status_code == 409
    assert "Task not created. There is no active worker" in nobody.text
    assert 'value="Nobody to do it"' in nobody.text
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
    assert 'href="http://127.0.0.1:8001/all"' not in (await tasks.client.get("/")).text
    refused = await tasks.client.get("/all")
    assert refused.status_code == 403
    assert "This page is for admins and managers only." in refused.text
    assert (await tasks.client.get("/shuffle")).status_code == 403
    assert (await tasks.client.post("/shuffle", data={"confirmed": "yes"})).status_code == 403

    await sign_in(tasks, "admin")
    landing = await tasks.client.get("/")  # admins and managers land on All tasks
    assert landing.status_code == 303 and landing.headers["location"] == "/all"
    for i in range(4):
        await submit(tasks, "/tasks", {"title": f"Task {i}"})
    listing = await tasks.client.get("/all")
    assert listing.status_code == 200
    assert 'href="http://127.0.0.1:8001/all"' in listing.text  # in the top navigation
    assert all(f"Task {i}" in listing.text for i in range(4))

    # the button asks first, saying what will happen
    question = await tasks.client.get("/shuffle")
    assert "This reassigns <strong>4</strong> open tasks" in question.text
    assert "Each assignment charges its fee again" in question.text
    unconfirmed = await tasks.client.post("/shuffle")
    assert unconfirmed.headers["location"] == "/shuffle"
    assert all(t.assignee_public_id in workers for t in await _tasks(tasks))
    before = await _assignment_count(tasks)
    assert before == 4  # nothing moved without the confirmation

    page = await submit(tasks, "/shuffle", {"confirmed": "yes"})
    assert "Shuffled: 4 open tasks reassigned." in page
    assert await _assignment_count(tasks) == 8

    filtered = await tasks.client.get(f"/all?assignee={workers[1]}")
    theirs = [t for t in await _tasks(tasks) if t.assignee_public_id == workers[1]]
    assert len(re.findall(r"<tr data-task=", filtered.text)) == len(theirs)


async def _assignment_count(harness: Harness) -> int:
    async with harness.db.reader() as session:
        return len((await session.scalars(select(AssignmentRecord))).all())


async def test_finding_tasks_by_text_person_creator_and_sort(tasks: Harness) -> None:
    polly = await hire(tasks.runtime, name="Polly Parrot")
    manager = await hire(tasks.runtime, role="manager", name="Max Manager")
    await sign_in(tasks, "manager", manager)
    await submit(tasks, "/tasks", {"title": "Sharpen the beak", "jira_id": "POPUG-42"})
    await submit(tasks, "/tasks", {"title": "Polish the perch"})
    await sign_in(tasks, "admin")
    await submit(tasks, "/tasks", {"title": "Count the 100% millet_seeds"})
    await sign_in(tasks, "manager", manager)

    def shown(page: str) -> list[str]:
        return re.findall(r"<strong>([^<]+)</strong></a>", page)

    assert shown((await tasks.client.get("/all?q=BEAK")).text) == ["Sharpen the beak"]
    assert shown((await tasks.client.get("/all?q=popug-4")).text) == ["Sharpen the beak"]
    assert shown((await tasks.client.get("/all?q=100%25")).text) == ["Count the 100% millet_seeds"]
    assert shown((await tasks.client.get("/all?q=0_")).text) == []  # _ is no wildcard
    mine = shown((await tasks.client.get("/all?created_by=me")).text)
    assert mine == ["Polish the perch", "Sharpen the beak"]

    # the people picker offers names, and choosing one filters by their id
    page = (await tasks.client.get(f"/all?assignee={polly}")).text
    assert f'<option value="{polly}" selected>Polly Parrot</option>' in page
    assert len(shown(page)) == 3  # Polly is the only worker

    (beak,) = [t for t in await _tasks(tasks) if t.title == "Sharpen the beak"]
    await sign_in(tasks, "worker", polly)
    await submit(tasks, f"/tasks/{beak.public_id}/complete")
    await sign_in(tasks, "manager", manager)
    completed_first = shown((await tasks.client.get("/all?sort=completed")).text)
    assert completed_first[0] == "Sharpen the beak"
    assert shown((await tasks.client.get("/all?status=done")).text) == ["Sharpen the beak"]

    odd = await tasks.client.get("/all?assignee=polly&status=lost&sort=price&page=x")
    assert odd.status_code == 200
    for message in ("Assignee: choose a person", "Status: &#39;lost&#39;", "Sort:", "Page:"):
        assert message in odd.text


async def test_long_lists_are_paged_and_say_where_you_are(tasks: Harness) -> None:
    worker = await hire(tasks.runtime)
    await sign_in(tasks, "worker", worker)
    for i in range(55):
        await tasks.client.post("/tasks", data={"title": f"Task {i}"})
    first = await tasks.client.get("/")
    assert len(re.findall(r"<tr data-task=", first.text)) == 50
    assert "Tasks 1\u201350 of 55 · page 1 of 2" in first.text
    later = re.search(r'<a href="([^"]+)" rel="next">', first.text)
    assert later is not None
    second = await tasks.client.get(later.group(1).replace("&amp;", "&"))
    assert len(re.findall(r"<tr data-task=", second.text)) == 5
    assert "Tasks 51\u201355 of 55 · page 2 of 2" in second.text
    assert 'rel="next"' not in second.text and 'rel="prev"' in second.text


async def test_the_task_page_tells_its_history(tasks: Harness) -> None:
    polly = await hire(tasks.runtime, name="Polly Parrot")
    kesha = await hire(tasks.runtime, name="Kesha Popug")
    await announce(tasks.runtime, "AccountCreated", person_data("manager", "Max Manager"))
    max_id = (await _people(tasks))["Max Manager"]
    await sign_in(tasks, "manager", max_id)
    await submit(tasks, "/tasks", {"title": "Sharpen the beak", "jira_id": "POPUG-42"})
    (task,) = await _tasks(tasks)
    first = task.assignee_public_id
    await submit(tasks, "/shuffle", {"confirmed": "yes"})
    (task,) = await _tasks(tasks)
    second = task.assignee_public_id

    await sign_in(tasks, "worker", second)
    page = (await tasks.client.get(f"/tasks/{task.public_id}")).text
    names = {polly: "Polly Parrot", kesha: "Kesha Popug"}
    history = page.split('data-testid="history">')[1].split("</ol>")[0]
    assert "created by Max Manager, assigned to <strong>" + names[first] in history
    assert f"shuffled from {names[first]} to <strong>{names[second]}</strong>" in history
    assert "by Max Manager" in page and "POPUG-42" in page
    assert f'action="/tasks/{task.public_id}/complete"' in page  # Done for the assignee
    assert f'/tasks/{task.public_id}">Its money in accounting' in page

    page = await submit(
        tasks, f"/tasks/{task.public_id}/complete", {"back": f"/tasks/{task.public_id}"}
    )
    history = page.split('data-testid="history">')[1].split("</ol>")[0]
    assert f"completed by <strong>{names[second]}</strong>" in history
    assert "/complete" not in page


async def test_an_unknown_task_is_a_styled_404(tasks: Harness) -> None:
    await sign_in(tasks, "worker")
    html = {"accept": "text/html"}
    for path in (f"/tasks/{uuid.uuid4()}", "/tasks/not-an-id", "/no/such/page"):
        page = await tasks.client.get(path, headers=html)
        assert page.status_code == 404, path
        assert page.headers["content-type"].startswith("text/html")
        assert "<h1>Not found</h1>" in page.text and "My tasks" in page.text
    api = await tasks.client.get("/no/such/page")
    assert api.json() == {"detail": "Not Found"}  # API clients keep their JSON


async def _people(harness: Harness) -> dict[str, str]:
    async with harness.db.reader() as session:
        rows = (await session.scalars(select(Person))).all()
    return {p.full_name or "": p.public_id for p in rows}


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
        assert page.count("Asia/Tokyo") == 1  # the zone once, in the footer


async def test_the_longest_description_fits_the_form_in_any_script(tasks: Harness) -> None:
    # 10,000 characters of CJK are about 90 KB once form-encoded: more than the 64 KiB a
    # JSON body may have, and still a form the page must take
    worker = await hire(tasks.runtime)
    await sign_in(tasks, "worker", worker)
    page = await submit(tasks, "/tasks", {"title": "Translate", "description": "鸚" * 10_000})
    assert "Task “Translate” created" in page
    (task,) = await _tasks(tasks)
    assert len(task.description) == 10_000

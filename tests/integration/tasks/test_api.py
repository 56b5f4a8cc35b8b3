"""The tasks JSON API through HTTP on a real database: every rule of T3-T6 and §4."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from ates.platform.tables import outbox
from ates.services.tasks.models import Task
from tests.integration.tasks.helpers import announce, hire, outbox_events, person_data
from tests.support import Harness, TokenFactory

pytestmark = pytest.mark.integration


async def _count(harness: Harness, table: Any) -> int:
    async with harness.db.reader() as session:
        return int(await session.scalar(select(func.count()).select_from(table)) or 0)


async def _create(
    harness: Harness, tokens: TokenFactory, title: str = "Sharpen the beak", **body: Any
) -> dict[str, Any]:
    response = await harness.client.post(
        "/api/tasks",
        json={"title": title, "description": "before lunch", **body},
        headers=tokens.headers("manager"),
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_a_new_task_goes_to_an_active_worker_and_both_events_are_in_the_outbox(
    tasks: Harness, tokens: TokenFactory
) -> None:
    worker = await hire(tasks.runtime)
    response = await tasks.client.post(
        "/api/tasks",
        json={"title": "Sharpen the beak", "jira_id": "POPUG-42", "description": "before lunch"},
        headers=tokens.headers("worker"),  # anyone may create a task
    )
    assert response.status_code == 201, response.text
    task = response.json()
    assert set(task) == {
        "public_id",
        "title",
        "jira_id",
        "description",
        "status",
        "assignee_public_id",
        "created_at",
        "completed_at",
    }
    assert (task["title"], task["jira_id"], task["status"], task["assignee_public_id"]) == (
        "Sharpen the beak",
        "POPUG-42",
        "open",
        worker,
    )
    assert task["completed_at"] is None
    assert task["created_at"].endswith("Z")

    created, assigned = await outbox_events(tasks.db)
    assert (created["event_name"], created["event_version"]) == ("TaskCreated", 2)
    assert created["producer"] == "tasks"
    assert created["data"] == {
        "public_id": task["public_id"],
        "title": "Sharpen the beak",
        "jira_id": "POPUG-42",
        "description": "before lunch",
    }
    assert assigned["event_name"] == "TaskAssigned"
    assert assigned["data"] == {
        "task_public_id": task["public_id"],
        "assignee_public_id": worker,
        "previous_assignee_public_id": None,
        "reason": "created",
        "shuffle_id": None,
    }


async def test_a_task_without_jira_id_and_description_is_fine(
    tasks: Harness, tokens: TokenFactory
) -> None:
    await hire(tasks.runtime)
    response = await tasks.client.post(
        "/api/tasks", json={"title": "Fly"}, headers=tokens.headers("accountant")
    )
    assert response.status_code == 201, response.text
    assert (response.json()["jira_id"], response.json()["description"]) == (None, "")


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"title": "[POPUG-1] Fix the perch"}, "title", "must not contain '[' or ']'"),
        ({"title": "Fix ] the perch"}, "title", "jira_id"),
        ({"description": "no title"}, "title", "is required"),
        ({"title": "   "}, "title", "must not be empty"),
        ({"title": "x" * 301}, "title", "300"),
        ({"title": "Fix", "jira_id": "POPUG 1"}, "jira_id", "one word"),
        ({"title": "Fix", "description": 7}, "description", "string"),
    ],
)
async def test_an_invalid_task_is_422_naming_the_field_and_nothing_is_stored(
    tasks: Harness, tokens: TokenFactory, body: dict[str, Any], field: str, words: str
) -> None:
    await hire(tasks.runtime)
    response = await tasks.client.post("/api/tasks", json=body, headers=tokens.headers())
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail.startswith(f"{field}:"), detail
    assert words in detail
    assert await _count(tasks, Task.__table__) == 0
    assert await _count(tasks, outbox) == 0


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        # the words the task page shows for the same mistakes ("Task not created. …")
        ({"title": "   "}, "title: must not be empty"),
        ({"title": "x" * 301}, "title: must be at most 300 characters"),
        (
            {"title": "Fix", "description": "x" * 10_001},
            "description: must be at most 10000 characters",
        ),
        ({"description": "no title"}, "title: is required"),
        ({"title": "Fix", "extra": 1, "jira_id": 5}, "jira_id: must be a string"),
        (["a list"], "body: must be a JSON object"),
    ],
)
async def test_a_422_says_what_is_wrong_in_the_pages_words(
    tasks: Harness, tokens: TokenFactory, body: Any, detail: str
) -> None:
    response = await tasks.client.post("/api/tasks", json=body, headers=tokens.headers())
    assert response.status_code == 422
    assert response.json()["detail"] == detail


async def test_a_body_that_is_not_json_is_a_422_naming_the_body(
    tasks: Harness, tokens: TokenFactory
) -> None:
    response = await tasks.client.post(
        "/api/tasks",
        content=b'{"title": ',
        headers={**tokens.headers(), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("body: not valid JSON ("), response.text


async def test_without_an_active_worker_a_task_is_409_and_nothing_is_stored_or_published(
    tasks: Harness, tokens: TokenFactory
) -> None:
    await hire(tasks.runtime, role="manager")
    gone = await hire(tasks.runtime)
    await announce(tasks.runtime, "AccountDeactivated", {"public_id": gone})
    response = await tasks.client.post(
        "/api/tasks", json={"title": "Nobody to do it"}, headers=tokens.headers("admin")
    )
    assert response.status_code == 409
    assert "no active worker" in response.json()["detail"]
    assert await _count(tasks, Task.__table__) == 0
    assert await _count(tasks, outbox) == 0


async def test_tasks_go_only_to_active_workers_and_spread_over_them(
    tasks: Harness, tokens: TokenFactory
) -> None:
    workers = {await hire(tasks.runtime) for _ in range(3)}
    await hire(tasks.runtime, role="manager")
    await hire(tasks.runtime, role="admin")
    gone = await hire(tasks.runtime)
    await announce(tasks.runtime, "AccountDeactivated", {"public_id": gone})
    promoted = await hire(tasks.runtime)
    await announce(
        tasks.runtime,
        "AccountRoleChanged",
        {"public_id": promoted, "old_role": "worker", "new_role": "manager"},
    )
    assignees = [(await _create(tasks, tokens))["assignee_public_id"] for _ in range(45)]
    assert set(assignees) == workers  # 45 draws over 3 workers: all drawn (p ≈ 1 - 3e-8)


async def test_the_api_needs_a_valid_token(tasks: Harness, tokens: TokenFactory) -> None:
    await hire(tasks.runtime)
    assert (await tasks.client.get("/api/tasks")).status_code == 401
    response = await tasks.client.post("/api/tasks", json={"title": "Fly"})
    assert response.status_code == 401
    assert "detail" in response.json()
    expired = {"Authorization": f"Bearer {tokens.token('admin', ttl=-60)}"}
    assert (await tasks.client.get("/api/tasks", headers=expired)).status_code == 401
    assert await _count(tasks, Task.__table__) == 0


async def test_the_assignee_completes_a_task_once(tasks: Harness, tokens: TokenFactory) -> None:
    worker = await hire(tasks.runtime)
    task = await _create(tasks, tokens)
    url = f"/api/tasks/{task['public_id']}/complete"

    other = await tasks.client.post(url, headers=tokens.headers("admin"))
    assert other.status_code == 403
    assert other.json()["detail"] == "only the assignee can complete this task"

    done = await tasks.client.post(url, headers=tokens.headers("worker", worker))
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "done"
    assert done.json()["completed_at"].endswith("Z")

    again = await tasks.client.post(url, headers=tokens.headers("worker", worker))
    assert again.status_code == 409
    assert again.json()["detail"] == "this task is already done"

    completed = await outbox_events(tasks.db, "TaskCompleted")
    assert len(completed) == 1
    assert completed[0]["data"]["task_public_id"] == task["public_id"]
    assert completed[0]["data"]["assignee_public_id"] == worker
    assert completed[0]["data"]["completed_at"] == done.json()["completed_at"].replace(
        "+00:00", "Z"
    )


async def test_unknown_tasks_are_404(tasks: Harness, tokens: TokenFactory) -> None:
    for path in (f"/api/tasks/{uuid.uuid4()}", "/api/tasks/not-an-id"):
        response = await tasks.client.get(path, headers=tokens.headers())
        assert response.status_code == 404
        assert "no task" in response.json()["detail"]
        response = await tasks.client.post(f"{path}/complete", headers=tokens.headers())
        assert response.status_code == 404


async def test_anyone_signed_in_reads_a_task_by_id(tasks: Harness, tokens: TokenFactory) -> None:
    await hire(tasks.runtime)
    task = await _create(tasks, tokens, jira_id="POPUG-7")
    response = await tasks.client.get(
        f"/api/tasks/{task['public_id']}", headers=tokens.headers("accountant")
    )
    assert response.status_code == 200
    assert response.json() == task


async def test_workers_list_only_their_own_tasks(tasks: Harness, tokens: TokenFactory) -> None:
    polly = await hire(tasks.runtime, name="Polly Parrot")
    kesha = await hire(tasks.runtime, name="Kesha Popug")
    made = [await _create(tasks, tokens, title=f"Task {i}") for i in range(12)]
    mine = {t["public_id"] for t in made if t["assignee_public_id"] == polly}
    done = next(t for t in made if t["assignee_public_id"] == polly)
    await tasks.client.post(
        f"/api/tasks/{done['public_id']}/complete", headers=tokens.headers("worker", polly)
    )

    listed = await tasks.client.get("/api/tasks", headers=tokens.headers("worker", polly))
    assert listed.status_code == 200
    assert {t["public_id"] for t in listed.json()} == mine
    only_open = await tasks.client.get(
        "/api/tasks?status=open&assignee=me", headers=tokens.headers("worker", polly)
    )
    assert {t["public_id"] for t in only_open.json()} == mine - {done["public_id"]}
    only_done = await tasks.client.get(
        "/api/tasks?status=done", headers=tokens.headers("worker", polly)
    )
    assert [t["public_id"] for t in only_done.json()] == [done["public_id"]]

    for assignee in ("all", kesha):
        refused = await tasks.client.get(
            f"/api/tasks?assignee={assignee}", headers=tokens.headers("worker", polly)
        )
        assert refused.status_code == 403
        assert refused.json()["detail"].startswith("assignee:")
    bad = await tasks.client.get("/api/tasks?status=closed", headers=tokens.headers())
    assert bad.status_code == 422
    assert bad.json()["detail"].startswith("status:")


async def test_admins_and_managers_list_everything_in_bounded_pages(
    tasks: Harness, tokens: TokenFactory
) -> None:
    polly = await hire(tasks.runtime)
    await hire(tasks.runtime)
    made = [await _create(tasks, tokens, title=f"Task {i}") for i in range(7)]

    seen: list[str] = []
    url: str | None = "/api/tasks?assignee=all&limit=3"
    while url:
        response = await tasks.client.get(url, headers=tokens.headers("admin"))
        assert response.status_code == 200
        assert len(response.json()) <= 3
        seen += [t["public_id"] for t in response.json()]
        url = response.links.get("next", {}).get("url")
    assert seen == [t["public_id"] for t in reversed(made)]  # newest first, each once

    polly_tasks = await tasks.client.get(
        f"/api/tasks?assignee={polly}", headers=tokens.headers("manager")
    )
    assert {t["assignee_public_id"] for t in polly_tasks.json()} <= {polly}
    assert len(polly_tasks.json()) == sum(t["assignee_public_id"] == polly for t in made)

    too_big = await tasks.client.get("/api/tasks?limit=201", headers=tokens.headers("admin"))
    assert too_big.status_code == 422
    assert too_big.json()["detail"].startswith("limit:")


async def test_shuffle_is_for_admins_and_managers_and_reassigns_every_open_task(
    tasks: Harness, tokens: TokenFactory
) -> None:
    workers = {await hire(tasks.runtime, name=f"Worker {i}") for i in range(4)}
    made = [await _create(tasks, tokens, title=f"Task {i}") for i in range(9)]
    done = made[0]
    await tasks.client.post(
        f"/api/tasks/{done['public_id']}/complete",
        headers=tokens.headers("worker", done["assignee_public_id"]),
    )
    for role in ("worker", "accountant"):
        refused = await tasks.client.post("/api/tasks/shuffle", headers=tokens.headers(role))
        assert refused.status_code == 403
    assert await outbox_events(tasks.db, "TaskAssigned") != []
    before = {t["public_id"]: t["assignee_public_id"] for t in made}

    response = await tasks.client.post("/api/tasks/shuffle", headers=tokens.headers("manager"))
    assert response.status_code == 200, response.text
    result = response.json()
    assert set(result) == {"shuffle_id", "reassigned"}
    assert result["reassigned"] == 8

    events = [
        e["data"]
        for e in await outbox_events(tasks.db, "TaskAssigned")
        if e["data"]["reason"] == "shuffle"
    ]
    assert sorted(e["task_public_id"] for e in events) == sorted(t["public_id"] for t in made[1:])
    assert {e["shuffle_id"] for e in events} == {result["shuffle_id"]}
    for event in events:
        assert event["previous_assignee_public_id"] == before[event["task_public_id"]]
        assert event["assignee_public_id"] in workers
    listed = await tasks.client.get("/api/tasks?assignee=all", headers=tokens.headers("admin"))
    now = {t["public_id"]: t["assignee_public_id"] for t in listed.json()}
    assert {e["task_public_id"]: e["assignee_public_id"] for e in events} == {
        k: v for k, v in now.items() if k != done["public_id"]
    }
    assert now[done["public_id"]] == done["assignee_public_id"]  # done tasks stay put


async def test_shuffle_without_active_workers_is_409(tasks: Harness, tokens: TokenFactory) -> None:
    worker = await hire(tasks.runtime)
    await _create(tasks, tokens)
    await announce(tasks.runtime, "AccountDeactivated", {"public_id": worker})
    response = await tasks.client.post("/api/tasks/shuffle", headers=tokens.headers("admin"))
    assert response.status_code == 409
    assert len(await outbox_events(tasks.db, "TaskAssigned")) == 1  # only the creation's


async def test_a_person_known_only_from_a_later_role_change_can_get_tasks(
    tasks: Harness, tokens: TokenFactory
) -> None:
    data = person_data(role="manager")
    await announce(
        tasks.runtime,
        "AccountRoleChanged",
        {"public_id": data["public_id"], "old_role": "manager", "new_role": "worker"},
    )
    task = await _create(tasks, tokens)
    assert task["assignee_public_id"] == data["public_id"]

"""The people API (DESIGN.md §4) with real tokens, and the events each change puts in the
outbox."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from ates.platform.tables import outbox
from tests.integration.auth.conftest import PASSWORD, AuthServer, Browser, tokens_for

pytestmark = pytest.mark.integration


class Api:
    def __init__(self, auth: AuthServer, token: str) -> None:
        self.auth = auth
        self.headers = {"Authorization": f"Bearer {token}"}

    async def __call__(self, method: str, path: str, body: Any = None) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.auth.url, timeout=10) as http:
            return await http.request(method, path, json=body, headers=self.headers)


@pytest.fixture
async def admin(auth: AuthServer, browser: Browser) -> Api:
    await auth.person("ada", role="admin", full_name="Ada Admin")
    return Api(auth, (await tokens_for(auth, browser, "ada"))["access_token"])


async def events(auth: AuthServer, name: str) -> list[dict[str, Any]]:
    async with auth.runtime.db.reader() as session:
        rows = (
            await session.execute(
                select(outbox.c.payload).where(outbox.c.event_name == name).order_by(outbox.c.id)
            )
        ).all()
    return [json.loads(row.payload)["data"] for row in rows]


NEW_POLLY = {
    "username": "polly",
    "email": "polly@example.com",
    "full_name": "Polly Parrot",
    "role": "worker",
    "password": PASSWORD,
}


async def test_an_admin_creates_a_person_and_auth_announces_them(
    auth: AuthServer, admin: Api
) -> None:
    created = await admin("POST", "/api/users", NEW_POLLY)
    assert created.status_code == 201, created.text
    person = created.json()
    assert person == {
        "public_id": person["public_id"],
        "username": "polly",
        "email": "polly@example.com",
        "full_name": "Polly Parrot",
        "role": "worker",
        "active": True,
    }
    listed = (await admin("GET", "/api/users")).json()
    assert [p["username"] for p in listed] == ["ada", "polly"]
    assert (await admin("GET", f"/api/users/{person['public_id']}")).json() == person
    announced = await events(auth, "AccountCreated")
    assert announced[-1] == {k: v for k, v in person.items() if k != "active"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"role": "boss"}, "role"),
        ({"username": "Polly Parrot"}, "username"),
        ({"password": "short"}, "password"),
        ({"email": "not an address"}, "email"),
        ({"full_name": "   "}, "full_name"),
        ({"password": None}, "password"),
        ({"salary_cents": 100}, "salary_cents"),
    ],
)
async def test_invalid_input_is_a_422_naming_the_field(
    auth: AuthServer, admin: Api, change: dict[str, Any], field: str
) -> None:
    body = {**NEW_POLLY, **change}
    response = await admin("POST", "/api/users", {k: v for k, v in body.items() if v is not None})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(f"{field}:")
    announced = [e["username"] for e in await events(auth, "AccountCreated")]
    assert announced == ["ada"], "nothing is announced for a refused person"


async def test_a_taken_username_is_a_conflict(admin: Api) -> None:
    assert (await admin("POST", "/api/users", NEW_POLLY)).status_code == 201
    again = await admin("POST", "/api/users", {**NEW_POLLY, "full_name": "Another Polly"})
    assert again.status_code == 409
    assert "polly" in again.json()["detail"]


async def test_changing_a_role_and_deactivating_are_announced(auth: AuthServer, admin: Api) -> None:
    polly = (await admin("POST", "/api/users", NEW_POLLY)).json()
    path = f"/api/users/{polly['public_id']}"

    promoted = await admin("PATCH", path, {"role": "manager", "full_name": "Polly P. Parrot"})
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["role"] == "manager"
    assert await events(auth, "AccountRoleChanged") == [
        {"public_id": polly["public_id"], "old_role": "worker", "new_role": "manager"}
    ]
    updated = await events(auth, "AccountUpdated")
    assert updated[-1] == {**polly, "role": "manager", "full_name": "Polly P. Parrot"}

    deactivated = await admin("PATCH", path, {"active": False})
    assert deactivated.json()["active"] is False
    assert await events(auth, "AccountDeactivated") == [{"public_id": polly["public_id"]}]
    assert (await events(auth, "AccountUpdated"))[-1]["active"] is False

    unchanged = await admin("PATCH", path, {"active": False})
    assert unchanged.status_code == 200
    assert len(await events(auth, "AccountDeactivated")) == 1, "no change, no event"

    reactivated = await admin("PATCH", path, {"active": True})
    assert reactivated.json()["active"] is True
    assert len(await events(auth, "AccountDeactivated")) == 1
    assert (await events(auth, "AccountUpdated"))[-1]["active"] is True


async def test_patch_refuses_unknown_people_and_bad_values(admin: Api) -> None:
    missing = await admin("PATCH", "/api/users/00000000-0000-4000-8000-000000000000", {})
    assert missing.status_code == 404
    polly = (await admin("POST", "/api/users", NEW_POLLY)).json()
    bad = await admin("PATCH", f"/api/users/{polly['public_id']}", {"role": "popug"})
    assert bad.status_code == 422
    assert bad.json()["detail"].startswith("role:")
    wrong_type = await admin("PATCH", f"/api/users/{polly['public_id']}", {"active": "maybe"})
    assert wrong_type.status_code == 422
    assert "active" in wrong_type.json()["detail"]


async def test_admins_cannot_lock_everyone_out(auth: AuthServer, admin: Api) -> None:
    me = (await admin("GET", "/api/me")).json()
    for change in ({"role": "worker"}, {"active": False}):
        response = await admin("PATCH", f"/api/users/{me['public_id']}", change)
        assert response.status_code == 409, response.text
    other = (await admin("POST", "/api/users", {**NEW_POLLY, "role": "admin"})).json()
    demoted = await admin("PATCH", f"/api/users/{other['public_id']}", {"role": "worker"})
    assert demoted.status_code == 200, "another admin remains: allowed"


async def test_me_and_roles(auth: AuthServer, browser: Browser, admin: Api) -> None:
    await admin("POST", "/api/users", NEW_POLLY)
    async with httpx.AsyncClient(timeout=10) as other_browser_client:
        worker_token = (await tokens_for(auth, Browser(other_browser_client), "polly"))[
            "access_token"
        ]
    worker = Api(auth, worker_token)
    me = await worker("GET", "/api/me")
    assert me.status_code == 200
    assert me.json()["username"] == "polly"
    assert (await worker("GET", "/api/users")).status_code == 403
    assert (
        await worker("POST", "/api/users", {**NEW_POLLY, "username": "kesha"})
    ).status_code == 403

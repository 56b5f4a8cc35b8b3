"""Auth's people pages, as an admin and as everyone else uses them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from tests.integration.auth.conftest import PASSWORD, AuthServer, login_form_fields

pytestmark = pytest.mark.integration


@asynccontextmanager
async def signed_in(auth: AuthServer, username: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=auth.url, timeout=10) as http:
        form = login_form_fields((await http.get("/login")).text)
        answer = await http.post(
            "/login", data={**form, "username": username, "password": PASSWORD}
        )
        assert answer.status_code == 303, answer.text
        yield http


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token on the page"
    return found.group(1)


async def test_an_admin_adds_and_edits_people(auth: AuthServer) -> None:
    await auth.person("ada", role="admin", full_name="Ada Admin")
    async with signed_in(auth, "ada") as http:
        home = await http.get("/")
        assert home.status_code == 200
        assert "Add a person" in home.text
        csrf = csrf_of(home.text)

        added = await http.post(
            "/people",
            data={
                "csrf_token": csrf,
                "username": "polly",
                "full_name": "Polly Parrot",
                "email": "",
                "role": "worker",
                "password": PASSWORD,
            },
        )
        assert added.status_code == 303
        home = await http.get("/")
        assert "Polly Parrot (polly) can now sign in." in home.text
        public_id = re.search(
            r'href="/people/([0-9a-f-]{36})">edit</a></td>\s*</tr>\s*</tbody>', home.text
        )
        assert public_id, home.text
        page = f"/people/{public_id.group(1)}"

        edit = {
            "csrf_token": csrf,
            "full_name": "Polly P. Parrot",
            "email": "polly@ates.local",
            "role": "manager",
            "active": "no",
        }
        edited = await http.post(page, data=edit)
        # deactivating asks first, saying what it does, and changes nothing yet
        assert edited.status_code == 200
        assert "Deactivate Polly Parrot?" in edited.text
        assert "will no longer be able to sign in" in edited.text
        assert "· active" in (await http.get(page)).text
        edited = await http.post(page, data={**edit, "confirmed": "yes"})
        assert edited.status_code == 303
        shown = await http.get(page)
        assert "Saved Polly P. Parrot (polly)." in shown.text
        assert "deactivated" in shown.text
        assert "<option selected>manager</option>" in shown.text

        refused = await http.post(
            "/people", data={"csrf_token": csrf, "username": "Bad Name", "password": PASSWORD}
        )
        assert refused.status_code == 422
        assert "username:" in refused.text

        forged = await http.post(
            "/people", data={"csrf_token": "forged", "username": "kesha", "password": PASSWORD}
        )
        assert forged.status_code == 400
        assert "kesha" not in (await http.get("/")).text.split("<h2>Add a person")[0]


async def test_an_admin_cannot_deactivate_themselves_from_the_page(auth: AuthServer) -> None:
    ada = await auth.person("ada", role="admin")
    async with signed_in(auth, "ada") as http:
        page = f"/people/{ada.public_id}"
        csrf = csrf_of((await http.get(page)).text)
        await http.post(page, data={"csrf_token": csrf, "active": "no", "confirmed": "yes"})
        shown = await http.get(page)
        assert "you cannot remove your own admin rights" in shown.text
        assert "· active" in shown.text


async def test_other_people_see_their_profile_but_not_the_admin_pages(auth: AuthServer) -> None:
    polly = await auth.person("polly", full_name="Polly Parrot")
    async with signed_in(auth, "polly") as http:
        home = await http.get("/")
        assert home.status_code == 200
        assert "Polly Parrot" in home.text
        assert "Add a person" not in home.text
        assert (await http.get(f"/people/{polly.public_id}")).status_code == 403
        posted = await http.post("/people", data={"username": "kesha", "password": PASSWORD})
        assert posted.status_code == 403


async def test_pages_send_strangers_to_the_login_form(auth: AuthServer) -> None:
    async with httpx.AsyncClient(base_url=auth.url, timeout=10) as http:
        answer = await http.get("/people/whatever")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fpeople%2Fwhatever"


async def test_an_admin_resets_a_password_after_a_confirmation(auth: AuthServer) -> None:
    await auth.person("ada", role="admin", full_name="Ada Admin")
    polly = await auth.person("polly", full_name="Polly Parrot")
    async with signed_in(auth, "ada") as http:
        person = await http.get(f"/people/{polly.public_id}")
        assert f'href="/people/{polly.public_id}/password"' in person.text
        question = await http.get(f"/people/{polly.public_id}/password")
        assert "Reset Polly Parrot's password?" in question.text
        assert "Their current password stops working" in question.text
        forged = await http.post(
            f"/people/{polly.public_id}/password", data={"csrf_token": "forged"}
        )
        assert forged.status_code == 303  # back to the question, nothing reset
        done = await http.post(
            f"/people/{polly.public_id}/password", data={"csrf_token": csrf_of(question.text)}
        )
        assert done.status_code == 200
        assert done.headers["cache-control"] == "no-store"
        one_time = re.search(r'data-testid="one-time-password">([^<]+)<', done.text)
        assert one_time
        unknown = await http.get("/people/00000000-0000-4000-8000-000000000000/password")
        assert unknown.status_code == 404
    async with httpx.AsyncClient(base_url=auth.url, timeout=10) as http:
        form = login_form_fields((await http.get("/login")).text)
        old = await http.post("/login", data={**form, "username": "polly", "password": PASSWORD})
        assert old.status_code == 401
        form = login_form_fields(old.text)
        new = await http.post(
            "/login", data={**form, "username": "polly", "password": one_time.group(1)}
        )
        assert new.headers["location"] == "/password"

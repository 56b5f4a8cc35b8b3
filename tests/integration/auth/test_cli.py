"""``ates users …``, ``ates keys …`` and ``ates token`` against a running auth service.

The commands run in a worker thread (they start their own event loop, and ``ates token``
makes blocking HTTP calls to the auth server this test's loop is serving)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select
from typer.testing import CliRunner, Result

from ates.cli import app
from ates.platform.tables import outbox
from tests.integration.auth.conftest import PASSWORD, AuthServer

pytestmark = pytest.mark.integration


async def ates(auth: AuthServer, *args: str) -> Result:
    env = {"ATES_AUTH_URL": auth.url}
    words = [*args, "--data-dir", str(auth.settings.data_dir)]
    return await asyncio.to_thread(CliRunner().invoke, app, words, env=env)


async def event_names(auth: AuthServer) -> list[str]:
    async with auth.runtime.db.reader() as session:
        return list(
            (await session.scalars(select(outbox.c.event_name).order_by(outbox.c.id))).all()
        )


async def test_people_commands(auth: AuthServer) -> None:
    created = await ates(
        auth, "users", "create", "polly", "--role", "worker", "--password", PASSWORD
    )
    assert created.exit_code == 0, created.output
    promoted = await ates(auth, "users", "set-role", "polly", "manager")
    assert promoted.exit_code == 0, promoted.output
    assert "polly: manager, active" in promoted.output
    deactivated = await ates(auth, "users", "deactivate", "polly")
    assert deactivated.exit_code == 0, deactivated.output
    listed = await ates(auth, "users", "list")
    assert "manager" in listed.output and "no" in listed.output
    assert await event_names(auth) == [
        "AccountCreated",
        "AccountRoleChanged",
        "AccountUpdated",
        "AccountDeactivated",
        "AccountUpdated",
    ]
    reactivated = await ates(auth, "users", "activate", "polly")
    assert "polly: manager, active" in reactivated.output

    unknown = await ates(auth, "users", "set-role", "nobody", "manager")
    assert unknown.exit_code == 1
    assert "no person with username 'nobody'" in unknown.output
    bad_role = await ates(auth, "users", "set-role", "polly", "boss")
    assert bad_role.exit_code == 2
    assert "role: must be one of" in bad_role.output


async def test_lists_print_whole_ids_and_emails_and_json(auth: AuthServer) -> None:
    polly = await auth.person("polly", email="polly.parrot.of.the.long.perch@example.com")
    narrow = await asyncio.to_thread(
        CliRunner().invoke,
        app,
        ["users", "list", "--data-dir", str(auth.settings.data_dir)],
        env={"ATES_AUTH_URL": auth.url, "COLUMNS": "40"},
    )
    assert narrow.exit_code == 0, narrow.output
    (line,) = [row for row in narrow.output.splitlines() if row.startswith("polly ")]
    assert line.split() == [
        "polly",
        "worker",
        "yes",
        "Polly",
        "polly.parrot.of.the.long.perch@example.com",
        polly.public_id,
    ]
    as_json = await ates(auth, "users", "list", "--json")
    assert json.loads(as_json.stdout) == [polly.as_json()]
    keys = await ates(auth, "keys", "list", "--json")
    assert keys.exit_code == 0, keys.output
    assert [set(key) for key in json.loads(keys.stdout)] == [
        {"kid", "algorithm", "created_at", "retire_at"}
    ]


async def test_a_reset_password_is_a_one_time_password(auth: AuthServer) -> None:
    polly = await auth.person("polly")
    reset = await ates(auth, "users", "reset-password", "polly")
    assert reset.exit_code == 0, reset.output
    one_time = reset.stdout.strip().splitlines()[-1]
    assert len(one_time) >= 12
    assert (await event_names(auth))[-1] == "AccountPasswordReset"

    old = await ates(auth, "token", "polly", "--password", PASSWORD)
    assert old.exit_code == 1 and "Wrong username or password." in old.output
    once = await ates(auth, "token", "polly", "--password", one_time)
    assert once.exit_code == 1 and "one-time password" in once.output

    # the sign-in page asks for a new password first, then signs in
    async with httpx.AsyncClient(base_url=auth.url, timeout=10) as http:
        form = (await http.get("/login")).text
        csrf = form.split('name="csrf_token" value="')[1].split('"')[0]
        signed = await http.post(
            "/login", data={"csrf_token": csrf, "username": "polly", "password": one_time}
        )
        assert signed.status_code == 303 and signed.headers["location"] == "/password"
        assert (await http.get("/")).status_code == 303, "not signed in before choosing"
        choose = (await http.get("/password")).text
        assert "Choose a new password" in choose
        csrf = choose.split('name="csrf_token" value="')[1].split('"')[0]
        differ = await http.post(
            "/password", data={"csrf_token": csrf, "password": "new-pass-1", "again": "other"}
        )
        assert differ.status_code == 422 and "New password and Again differ" in differ.text
        chosen = await http.post(
            "/password",
            data={"csrf_token": csrf, "password": "new-pass-1", "again": "new-pass-1"},
        )
        assert chosen.status_code == 303
        assert (await http.get("/")).status_code == 200, "signed in now"
    renewed = await ates(auth, "token", "polly", "--password", "new-pass-1")
    assert renewed.exit_code == 0, renewed.output
    again = await ates(auth, "token", "polly", "--password", one_time)
    assert again.exit_code == 1, "the one-time password worked once only"
    async with auth.runtime.db.reader() as session:
        events = (
            (
                await session.execute(
                    select(outbox.c.payload).where(outbox.c.event_name == "AccountPasswordReset")
                )
            )
            .scalars()
            .all()
        )
    (event,) = [json.loads(e) for e in events]
    assert event["data"] == {"public_id": polly.public_id, "reset_by_public_id": None}
    assert one_time not in json.dumps(event)


async def test_token_prints_an_access_token_from_the_pkce_flow(auth: AuthServer) -> None:
    polly = await auth.person("polly")
    result = await ates(auth, "token", "polly", "--password", PASSWORD)
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    keys = KeySet.import_key_set(json.loads(await _get(auth, "/.well-known/jwks.json")))
    claims = jwt.decode(token, keys, algorithms=["RS256"]).claims
    assert claims["sub"] == polly.public_id
    assert claims["client_id"] == "ates-cli"

    wrong = await ates(auth, "token", "polly", "--password", "not the password")
    assert wrong.exit_code == 1
    assert "Wrong username or password." in wrong.output


async def test_rotating_keys_keeps_old_tokens_valid(auth: AuthServer) -> None:
    await auth.person("polly")
    before = (await ates(auth, "token", "polly", "--password", PASSWORD)).stdout.strip()
    rotated = await ates(auth, "keys", "rotate")
    assert rotated.exit_code == 0, rotated.output
    after = (await ates(auth, "token", "polly", "--password", PASSWORD)).stdout.strip()
    keys = KeySet.import_key_set(json.loads(await _get(auth, "/.well-known/jwks.json")))
    assert len(keys.keys) == 2, "the old key stays published until its tokens expire"
    old = jwt.decode(before, keys, algorithms=["RS256"])
    new = jwt.decode(after, keys, algorithms=["RS256"])
    assert old.header["kid"] != new.header["kid"]
    listed = await ates(auth, "keys", "list")
    assert old.header["kid"] in listed.output and new.header["kid"] in listed.output


async def _get(auth: AuthServer, path: str) -> str:
    async with httpx.AsyncClient(timeout=10) as http:
        return (await http.get(f"{auth.url}{path}")).text

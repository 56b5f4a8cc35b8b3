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

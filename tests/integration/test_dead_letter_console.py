"""The dead-letter console of a service's pages (bundled NATS, the service's SQLite
database, the platform's consumer and pages): a handler broken on purpose dead-letters
an event; ``ates dlq list`` and the admin page both show it; after the fix, the page's
Replay applies it once, however often it is pressed; Discard takes a letter off the
pending list; only admins may look or press, and never from another site."""

from __future__ import annotations

import asyncio
import json
import re
from html import unescape
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from ates.cli import app as cli
from ates.config import Settings
from ates.platform import deadletters
from ates.platform.dates import format_moment
from ates.platform.tables import inbox
from ates.testing.events import account_created
from tests.support import (
    FailingHandler,
    TokenFactory,
    eventually,
    failing_service,
    make_settings,
    page_cookie,
    publish,
)

pytestmark = pytest.mark.integration

SAME_SITE = {"Origin": "http://notifications"}  # what a browser sends from the page itself


@pytest.fixture
def settings(tmp_path: Path, nats_url: str) -> Settings:
    return make_settings(
        tmp_path / "data", nats_url, max_deliveries=2, dead_letter_retries_at_start=0
    )


def forms(page: str) -> dict[str, str]:
    """The page's POST forms: action -> the label of its button."""
    found = re.findall(r'<form method="post" action="([^"]+)"[^>]*>.*?<button[^>]*>([^<]+)<', page)
    return {unescape(action): label for action, label in found}


async def dlq_list(settings: Settings) -> list[dict[str, object]]:
    words = ["dlq", "list", "notifications", "--json", "--data-dir", str(settings.data_dir)]
    listed = await asyncio.to_thread(CliRunner().invoke, cli, words)
    assert listed.exit_code == 0, listed.output
    found: list[dict[str, object]] = json.loads(listed.stdout)
    return found


async def test_a_letter_is_replayed_from_the_page_after_the_fix_and_applied_once(
    settings: Settings, tokens: TokenFactory
) -> None:
    handler = FailingHandler(RuntimeError("bug: no such column people.nickname"))
    broken, other = account_created(username="broken-one"), account_created(username="other")
    async with failing_service(settings, tokens, handler) as service:
        runtime, http = service.runtime, service.client
        await publish(settings, broken, other)

        async def both_letters() -> list[deadletters.DeadLetter]:
            letters = await deadletters.list_dead_letters(runtime.db)
            return letters if len(letters) == 2 else []

        letter, other_letter = sorted(
            await eventually(both_letters), key=lambda item: item.event_id != broken.event_id
        )
        assert letter.event_id == broken.event_id

        # the command line lists it ...
        listed = {item["event_id"]: item for item in await dlq_list(settings)}
        assert listed[broken.event_id]["id"] == letter.id
        assert "no such column" in str(listed[broken.event_id]["error"])

        # ... and so does the admin's page: error, payload, attempts, the time as pages write it
        http.cookies.update(await page_cookie(runtime, role="admin", username="root"))
        page = await http.get("/admin/dead-letters")
        assert page.status_code == 200, page.text
        row = re.search(rf'<tr data-letter="{letter.id}".*?</tr>', page.text, re.S)
        assert row is not None
        assert broken.event_id in row[0] and "AccountCreated" in row[0]
        assert "RuntimeError(&#39;bug: no such column people.nickname&#39;)" in row[0]
        assert "&#34;username&#34;: &#34;broken-one&#34;" in row[0]  # the payload, indented
        assert '<td data-label="Attempts" class="num">2' in row[0]
        assert format_moment(letter.created_at, settings.zone) in row[0]
        replay_url = f"/admin/dead-letters/{letter.id}/replay"
        assert forms(page.text)[replay_url] == "Replay"
        assert forms(page.text)[f"/admin/dead-letters/{letter.id}/discard"] == "Discard"
        assert "/admin/status" in page.text  # the admin's navigation leads to operations

        # pressed before the fix: it fails again and stays pending, with the new error
        pressed = await http.post(replay_url, headers=SAME_SITE)
        assert (pressed.status_code, pressed.headers["location"]) == (303, "/admin/dead-letters")
        page = await http.get("/admin/dead-letters")
        assert "failed; it stays pending" in page.text and replay_url in forms(page.text)

        # the fix, then Replay: applied once
        handler.fixed = True
        pressed = await http.post(replay_url, headers=SAME_SITE)
        assert pressed.status_code == 303
        page = await http.get("/admin/dead-letters")
        assert f"Dead letter #{letter.id} replayed: applied." in page.text
        assert f'data-letter="{letter.id}"' not in page.text  # off the pending list
        assert handler.applied == [broken.event_id]

        # pressed again (a second tab, the back button): nothing applied twice
        pressed = await http.post(replay_url, headers=SAME_SITE)
        page = await http.get("/admin/dead-letters")
        assert f"dead letter {letter.id} is already replayed" in page.text
        assert handler.applied == [broken.event_id]
        async with runtime.db.reader() as session:
            recorded = await session.scalar(
                select(func.count()).select_from(inbox).where(inbox.c.event_id == broken.event_id)
            )
        assert recorded == 1
        replayed = await http.get("/admin/dead-letters", params={"status": "replayed"})
        assert f'data-letter="{letter.id}" data-status="replayed"' in replayed.text

        # Discard: off the pending list, kept for the record, never applied
        discard_url = f"/admin/dead-letters/{other_letter.id}/discard"
        assert (await http.post(discard_url, headers=SAME_SITE)).status_code == 303
        page = await http.get("/admin/dead-letters")
        assert f"Dead letter #{other_letter.id} discarded." in page.text
        assert 'data-testid="none"' in page.text
        assert await deadletters.list_dead_letters(runtime.db) == []
        assert other.event_id not in handler.applied
        assert [item["id"] for item in await dlq_list(settings)] == []


async def test_only_an_admin_may_see_or_press_and_never_from_another_site(
    settings: Settings, tokens: TokenFactory
) -> None:
    handler = FailingHandler(RuntimeError("bug: no such column people.nickname"))
    async with failing_service(settings, tokens, handler) as service:
        runtime, http = service.runtime, service.client
        await publish(settings, account_created(username="broken-one"))
        (letter,) = await eventually(lambda: deadletters.list_dead_letters(runtime.db))
        handler.fixed = True
        replay_url = f"/admin/dead-letters/{letter.id}/replay"

        # nobody signed in: sent to sign in, like every page
        anonymous = await http.get("/admin/dead-letters")
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == "/login?next=%2Fadmin%2Fdead-letters"
        assert (await http.post(replay_url, headers=SAME_SITE)).status_code == 303

        # someone who is not an admin: 403, nothing applied
        for role in ("worker", "manager", "accountant"):
            http.cookies.clear()
            http.cookies.update(await page_cookie(runtime, role=role))
            looked = await http.get("/admin/dead-letters", headers={"Accept": "text/html"})
            assert looked.status_code == 403 and "for admins only" in looked.text
            assert (await http.post(replay_url, headers=SAME_SITE)).status_code == 403
            assert (await http.get("/admin/status")).status_code == 403
            assert "/admin/status" not in (await http.get("/admin/status")).text

        # an admin's cookie riding on another site's form: refused before anything runs
        http.cookies.clear()
        http.cookies.update(await page_cookie(runtime, role="admin"))
        forged = await http.post(replay_url, headers={"Origin": "http://evil.example"})
        assert forged.status_code == 403
        assert forged.json() == {"detail": "cross-site form submission refused"}
        forged = await http.post(
            f"/admin/dead-letters/{letter.id}/discard", headers={"Origin": "http://evil.example"}
        )
        assert forged.status_code == 403
        assert handler.applied == []
        still = await deadletters.get_dead_letter(runtime.db, letter.id)
        assert still is not None and still.status == "pending"

        # a letter id that is not one: a clear 4xx naming it
        odd = await http.post("/admin/dead-letters/x/replay", headers=SAME_SITE)
        assert odd.status_code == 422 and "letter_id" in odd.text
        assert (await http.get("/admin/dead-letters?status=lost")).status_code == 422

"""What every service's web side shares: cross-site form posts are refused."""

from __future__ import annotations

import pytest

from ates.config import Settings
from tests.support import TokenFactory, page_cookie, service_harness

pytestmark = pytest.mark.integration


async def test_a_form_posted_from_another_site_is_refused(
    settings: Settings, tokens: TokenFactory
) -> None:
    async with service_harness("tasks", settings, tokens, messaging=False) as tasks:
        tasks.client.cookies.update(page_cookie(settings, "tasks", role="manager"))

        forged = await tasks.client.post("/shuffle", headers={"Origin": "http://evil.example"})
        assert forged.status_code == 403
        assert forged.json() == {"detail": "cross-site form submission refused"}

        for origin in ("http://tasks", settings.public_url("tasks")):
            own = await tasks.client.post("/shuffle", headers={"Origin": origin})
            assert own.status_code == 303, (origin, own.text)

        # no Origin at all (curl, old clients): the SameSite cookie is the defence
        assert (await tasks.client.post("/shuffle")).status_code == 303
        # the JSON API is not a form: bearer tokens, no cookie to ride on
        api = await tasks.client.post(
            "/api/tasks/shuffle",
            headers={"Origin": "http://evil.example", **tokens.headers("manager")},
        )
        assert api.status_code != 403 and "cross-site" not in api.text, api.text

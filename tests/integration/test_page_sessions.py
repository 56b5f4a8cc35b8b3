"""A dashboard's open session follows what its copy of people learns from auth's account
events: a role taken away or an account deactivated after the sign-in counts at the next
request (within the time the event takes to arrive, well inside the access-token
lifetime), whatever the signed cookie still says."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ates.config import Settings
from tests.integration.billing import events as ev
from tests.integration.billing.books import Books
from tests.integration.tasks.helpers import announce, hire, person_data
from tests.support import TokenFactory, make_settings, page_cookie, service_harness

pytestmark = pytest.mark.integration


@pytest.fixture
def offline(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data", None)


async def test_a_demoted_manager_can_no_longer_shuffle(
    offline: Settings, tokens: TokenFactory
) -> None:
    async with service_harness("tasks", offline, tokens, messaging=False) as tasks:
        manager = await hire(tasks.runtime, role="manager", name="Mona Manager")
        await hire(tasks.runtime)
        tasks.client.cookies.update(await page_cookie(tasks.runtime, "manager", manager))
        assert (await tasks.client.get("/all")).status_code == 200

        await announce(
            tasks.runtime,
            "AccountRoleChanged",
            {"public_id": manager, "old_role": "manager", "new_role": "worker"},
        )
        shuffled = await tasks.client.post("/shuffle", data={"confirmed": "yes"})
        assert shuffled.status_code == 403
        refused = await tasks.client.get("/all")
        assert refused.status_code == 403
        assert '<small class="role">worker</small>' in refused.text, (
            "the header shows the role as it is now"
        )
        assert (await tasks.client.get("/")).status_code == 200, "still signed in"


async def test_a_role_the_copy_has_not_heard_of_yet_is_the_sign_ins(
    offline: Settings, tokens: TokenFactory
) -> None:
    # promoted at auth, signed in with the new role, the event still on its way here
    async with service_harness("tasks", offline, tokens, messaging=False) as tasks:
        data = person_data("worker")
        await announce(
            tasks.runtime, "AccountCreated", data, at=datetime.now(UTC) - timedelta(minutes=1)
        )
        tasks.client.cookies.update(await page_cookie(tasks.runtime, "manager", data["public_id"]))
        assert (await tasks.client.get("/all")).status_code == 200


async def test_a_deactivated_worker_is_signed_out_of_billing(
    offline: Settings, tokens: TokenFactory
) -> None:
    async with service_harness("billing", offline, tokens, messaging=False) as billing:
        feed = Books(billing.db, random.Random(3))
        worker = ev.new_id()
        await feed.apply(ev.account_created(worker))
        billing.client.cookies.update(await page_cookie(billing.runtime, "worker", worker))
        assert (await billing.client.get("/")).status_code == 200

        await feed.apply(ev.make("AccountDeactivated", {"public_id": worker}, producer="auth"))
        page = await billing.client.get("/")
        assert page.status_code == 303
        assert page.headers["location"].startswith("/login?next=")
        # the session is over on the server: being reactivated does not bring it back
        await feed.apply(
            ev.make(
                "AccountUpdated",
                {**ev.account_created(worker).data, "active": True},
                producer="auth",
            )
        )
        assert (await billing.client.get("/")).status_code == 303


async def test_an_admin_demoted_loses_the_analytics_page(
    offline: Settings, tokens: TokenFactory
) -> None:
    async with service_harness("analytics", offline, tokens, messaging=False) as analytics:
        admin = person_data("admin")
        await announce(
            analytics.runtime,
            "AccountCreated",
            admin,
            at=datetime.now(UTC) - timedelta(minutes=1),
        )
        analytics.client.cookies.update(
            await page_cookie(analytics.runtime, "admin", admin["public_id"])
        )
        assert (await analytics.client.get("/")).status_code == 200
        await announce(
            analytics.runtime,
            "AccountRoleChanged",
            {"public_id": admin["public_id"], "old_role": "admin", "new_role": "accountant"},
        )
        refused = await analytics.client.get("/")
        assert refused.status_code == 403
        assert "admins only" in refused.text

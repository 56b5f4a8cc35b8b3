"""Every service serves the event catalog: ``/asyncapi.json`` and a page of it."""

from __future__ import annotations

import pytest

from ates.config import Settings
from ates.platform.catalog import document
from tests.support import TokenFactory, service_harness

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("service", ["billing", "notifications"])
async def test_the_catalog_is_served_as_asyncapi_and_as_a_page(
    settings: Settings, tokens: TokenFactory, service: str
) -> None:
    async with service_harness(service, settings, tokens, messaging=False) as harness:
        served = await harness.client.get("/asyncapi.json")
        page = await harness.client.get("/asyncapi")
    assert served.status_code == 200
    assert served.headers["content-type"] == "application/json"
    assert served.json() == document()
    assert page.status_code == 200
    html = page.text
    assert page.headers["content-type"].startswith("text/html")
    assert '<link rel="stylesheet" href="/static/ates.css">' in html
    assert "<script" not in html
    assert 'href="/asyncapi.json"' in html
    for name in ("TaskCreated", "TransactionApplied", "AccountCreated", "DayClosed"):
        assert f"<h3>{name}</h3>" in html
    assert "<h4>TaskCreated v1</h4>" in html and "<h4>TaskCreated v2</h4>" in html
    # who produces and who consumes, from the services' specs
    created = html[html.index('id="tasks.TaskCreated"') :]
    created = created[: created.index("</article>")]
    assert "<dt>produced by</dt><dd>tasks</dd>" in created
    assert "<dt>consumed by</dt><dd>analytics, billing, notifications</dd>" in created

"""What every service's web side shares: cross-site form posts are refused, security
headers on every response, a cap on request bodies."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from ates.config import Settings
from tests.support import TokenFactory, page_cookie, service_harness

pytestmark = pytest.mark.integration


async def test_a_form_posted_from_another_site_is_refused(
    settings: Settings, tokens: TokenFactory
) -> None:
    async with service_harness("tasks", settings, tokens, messaging=False) as tasks:
        tasks.client.cookies.update(await page_cookie(tasks.runtime, role="manager"))

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


SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


def csp_directives(response: httpx.Response) -> dict[str, str]:
    policy = response.headers["content-security-policy"]
    return {
        part.strip().split(" ", 1)[0]: part.strip().partition(" ")[2]
        for part in policy.split(";")
        if part.strip()
    }


@pytest.mark.parametrize("service", ["auth", "tasks", "billing", "analytics"])
async def test_every_response_carries_the_security_headers(
    settings: Settings, tokens: TokenFactory, service: str
) -> None:
    async with service_harness(service, settings, tokens, messaging=False) as harness:
        for path in ("/", "/login", "/healthz", "/api/nothing-here", "/static/ates.css"):
            response = await harness.client.get(path)
            for name, value in SECURITY_HEADERS.items():
                assert response.headers.get(name) == value, (path, name, response.headers)
            policy = csp_directives(response)
            assert policy["default-src"] == "'self'"
            assert policy["script-src"] == "'none'", "no page needs a script"
            assert policy["style-src"] == "'self'", "no inline style"
            assert policy["frame-ancestors"] == "'none'"
            assert policy["object-src"] == "'none'" and policy["base-uri"] == "'none'"
            # forms post to their own service; a sign-in or sign-out hops to another one
            dashboards = ("auth", "tasks", "billing", "analytics", "notifications")
            origins = {settings.public_url(s) for s in dashboards}
            assert set(policy["form-action"].split()) == {"'self'", *origins}
            assert set(policy["frame-src"].split()) == {"'self'", *origins}


async def test_a_json_body_over_64_kib_is_refused_with_413(
    settings: Settings, tokens: TokenFactory
) -> None:
    async with service_harness("tasks", settings, tokens, messaging=False) as tasks:
        headers = {**tokens.headers("worker"), "Content-Type": "application/json"}
        huge = json.dumps({"title": "t", "description": "x" * 10_000_000}).encode()
        refused = await tasks.client.post("/api/tasks", content=huge, headers=headers)
        assert refused.status_code == 413
        assert refused.json() == {"detail": "body: at most 65536 bytes"}

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
            yield b'{"title": "t", "description": "'
            for _ in range(100):
                yield b"x" * 1024
            yield b'"}'

        streamed = await tasks.client.post("/api/tasks", content=chunks(), headers=headers)
        assert streamed.status_code == 413

        # just under the limit is read as usual (no worker yet: 409)
        fits = json.dumps({"title": "t", "description": "x" * 9_000}).encode()
        assert len(fits) < 64 * 1024
        answer = await tasks.client.post("/api/tasks", content=fits, headers=headers)
        assert answer.status_code == 409, answer.text


@pytest.mark.parametrize("service", ["tasks", "billing"])
async def test_api_docs_load_from_the_package_under_their_own_policy(
    settings: Settings, tokens: TokenFactory, service: str
) -> None:
    async with service_harness(service, settings, tokens, messaging=False) as harness:
        page = await harness.client.get("/docs")
        assert page.status_code == 200
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert sources and all(s.startswith("/") for s in sources), "nothing from a CDN"
        assert "<script>" not in page.text, "no inline script"
        policy = csp_directives(page)
        assert policy["script-src"] == "'self'" and policy["frame-ancestors"] == "'none'"
        for asset in sources:
            loaded = await harness.client.get(asset)
            assert loaded.status_code == 200, asset
        bundle = await harness.client.get("/docs-assets/swagger-ui-bundle.js")
        assert "SwaggerUIBundle" in bundle.text
        # every other page keeps the strict policy: no script at all
        assert csp_directives(await harness.client.get("/healthz"))["script-src"] == "'none'"


async def test_an_error_on_our_side_is_a_styled_page_for_a_browser(
    settings: Settings, tokens: TokenFactory
) -> None:
    from ates.platform.runtime import build_runtime
    from ates.platform.service import create_app
    from ates.services.registry import spec

    runtime = build_runtime(spec("tasks"), settings, verifier=tokens.verifier())
    app = create_app(spec("tasks"), settings, runtime=runtime, messaging=False)

    async def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/broken", broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://tasks") as client:
        page = await client.get("/broken", headers={"accept": "text/html"})
        assert page.status_code == 500
        assert "<h1>Something went wrong</h1>" in page.text
        assert "a bug" not in page.text  # nothing of the inside shows
        api = await client.get("/broken")
        assert api.status_code == 500
        assert api.json() == {"detail": "internal server error"}

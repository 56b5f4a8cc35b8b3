"""Each service's OpenAPI document is true: schemathesis generates requests from it (valid
and invalid ones) and checks every answer against it. No 5xx, no undocumented status,
no body that breaks its schema, and invalid input refused with a 4xx.

Bounded to a few examples per operation (the suite runs on a shared two-core machine);
the same run with more examples is ``OPENAPI_EXAMPLES=500 pytest -k openapi``.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import APIOperation, BaseSchema, Case, GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.result import Ok

from ates.platform import migrations
from ates.platform.db import Database
from ates.platform.runtime import build_runtime
from ates.platform.service import create_app
from ates.platform.uow import UnitOfWork
from ates.services.auth.commands import CreatePerson, create_person
from ates.services.registry import spec
from tests.support import TokenFactory, make_settings

pytestmark = pytest.mark.integration

SERVICES = ("auth", "tasks", "billing", "analytics")
EXPLORE = os.environ.get("OPENAPI_EXAMPLES")
# The suite's run is small and the same every time (derandomized): it cannot turn red on
# a draw no one can repeat. OPENAPI_EXAMPLES=N explores N random examples per operation.
EXAMPLES = int(EXPLORE or 8)
# The services ignore query parameters they do not know (as HTTP APIs do): schemathesis
# is not to count one as invalid input.
CONFIG = schemathesis.Config.from_dict({"generation": {"allow-extra-parameters": False}})


async def _prepare(service: str, database_url: str) -> str | None:
    """Migrate the service's database; for auth, also an admin the token speaks for
    (auth checks every token's person against its own table). Returns that person."""
    db = Database(database_url)
    try:
        await migrations.upgrade(service, db)
        if service != "auth":
            return None
        async with UnitOfWork(db, "auth") as uow:
            admin = await create_person(
                uow, CreatePerson(username="ada", role="admin", password="correct horse")
            )
        return admin.public_id
    finally:
        await db.dispose()


@pytest.fixture(params=SERVICES)
def service_api(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[BaseSchema, dict[str, str]]:
    """The service's app (no broker) with its document loaded, and an admin's token."""
    service: str = request.param
    tokens = TokenFactory()
    config = make_settings(tmp_path / "data", None)
    admin = asyncio.run(_prepare(service, config.database_url(service)))
    runtime = build_runtime(spec(service), config, verifier=tokens.verifier())
    app = create_app(spec(service), config, runtime=runtime, messaging=False)
    document = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)
    return document, tokens.headers("admin", admin)


# Rules no schema can state: the request is well-formed, yet refused (422, saying why).
BEYOND_THE_SCHEMA = {
    "POST /api/days/{date}/close": "a day after today (the document cannot know today)",
    "GET /api/most-expensive": "'to' before 'from', or a range over 366 days",
}


def _check(
    operation: APIOperation[Any, Any, Any, Any], mode: GenerationMode, headers: dict[str, str]
) -> None:
    """Cases of one operation; ``headers`` win over what schemathesis generated."""
    excluded = [positive_data_acceptance] if operation.label in BEYOND_THE_SCHEMA else []

    # Hypothesis seeds its derandomized draws from run's source, comments aside: typing it
    # with ignores (not edits) keeps the examples the suite runs as they were.
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=EXPLORE is None,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Case) -> None:  # type: ignore[type-arg]
        # fmt: off
        case.call_and_validate(
            headers={**(case.headers or {}), **headers}, excluded_checks=excluded  # type: ignore[dict-item]
        )
        # fmt: on

    run()


def test_the_api_answers_as_its_document_says(
    service_api: tuple[BaseSchema, dict[str, str]],
) -> None:
    schema, admin = service_api
    rounds = [
        ("valid input, an admin's token", GenerationMode.POSITIVE, admin),
        ("invalid input, an admin's token", GenerationMode.NEGATIVE, admin),
        ("valid input, whatever token schemathesis makes up", GenerationMode.POSITIVE, {}),
    ]
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()  # an operation the document got wrong
        operations.append(result.ok())
    assert operations
    failures = []
    for operation in operations:
        for name, mode, headers in rounds:
            try:
                _check(operation, mode, headers)
            except (Exception, BaseExceptionGroup) as error:  # every operation's, not the first
                failures.append(f"{operation.label} with {name}: {error}")
    assert not failures, "\n\n".join(failures)

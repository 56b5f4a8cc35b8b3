"""The record of the migration chains as they were before the platform tables had
revisions of their own (#15 item 8) still fits the chains. What the migrations do on each
database is the database contract's (``tests/integration/database_contract/schema.py``):
a fresh upgrade builds the platform tables the code uses, a database of every earlier
revision upgrades to the same schema and keeps its rows, a downgrade to base leaves no
table behind."""

from __future__ import annotations

import json

import pytest

from ates.config import SERVICES
from tests.integration.migration_schema import SNAPSHOT, revisions

pytestmark = pytest.mark.integration


def test_the_recorded_schemas_cover_each_service_chain_up_to_its_head_of_then() -> None:
    recorded = json.loads(SNAPSHOT.read_text())
    for service in SERVICES:
        then = list(recorded["sqlite"][service]["revisions"])
        assert revisions(service)[: len(then)] == then

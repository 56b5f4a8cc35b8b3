"""The tasks service: what it consumes, serves and runs."""

from __future__ import annotations

from pathlib import Path

from ates.platform.runtime import ServiceSpec
from ates.services.tasks import api, pages, queries
from ates.services.tasks.consumers import HANDLERS

SPEC = ServiceSpec(
    name="tasks",
    title="Task tracker",
    produces=("tasks",),
    consumes=HANDLERS,
    routers=(api.router, pages.router),
    templates=Path(__file__).parent / "templates",
    standing=queries.standing,
)

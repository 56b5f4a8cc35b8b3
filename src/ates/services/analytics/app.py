from __future__ import annotations

from pathlib import Path

from ates.platform.runtime import ServiceSpec
from ates.services.analytics import api, pages, queries
from ates.services.analytics.consumers import HANDLERS, reset_projections

SPEC = ServiceSpec(
    name="analytics",
    title="Analytics",
    consumes=HANDLERS,
    routers=(api.router, pages.router),
    templates=Path(__file__).parent / "templates",
    read_model_reset=reset_projections,
    standing=queries.standing,
)

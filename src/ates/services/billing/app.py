from __future__ import annotations

from pathlib import Path

from ates.platform.service import ServiceSpec
from ates.services.billing.handlers import HANDLERS

SPEC = ServiceSpec(
    name="billing",
    title="Accounting",
    consumes=HANDLERS,
    templates=Path(__file__).parent / "templates",
)

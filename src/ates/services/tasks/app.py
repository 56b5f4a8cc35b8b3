from __future__ import annotations

from pathlib import Path

from ates.platform.service import ServiceSpec
from ates.services.tasks.handlers import HANDLERS

SPEC = ServiceSpec(
    name="tasks",
    title="Task tracker",
    consumes=HANDLERS,
    templates=Path(__file__).parent / "templates",
)

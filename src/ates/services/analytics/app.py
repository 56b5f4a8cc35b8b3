from __future__ import annotations

from pathlib import Path

from ates.platform.service import ServiceSpec

SPEC = ServiceSpec(
    name="analytics",
    title="Analytics",
    templates=Path(__file__).parent / "templates",
)

"""The services of aTES, by name."""

from __future__ import annotations

from importlib import import_module

from ates.config import SERVICES
from ates.platform.runtime import ServiceSpec


def spec(name: str) -> ServiceSpec:
    if name not in SERVICES:
        raise KeyError(f"unknown service {name!r} (one of {', '.join(SERVICES)})")
    module = import_module(f"ates.services.{name}.app")
    result: ServiceSpec = module.SPEC
    return result

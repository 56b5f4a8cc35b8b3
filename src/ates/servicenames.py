"""The services of aTES and their ports' offsets: names only, importing nothing, so the
command line can print its help without loading what the services are built of."""

from __future__ import annotations

SERVICES: tuple[str, ...] = ("auth", "tasks", "billing", "analytics", "notifications")
PORT_OFFSETS: dict[str, int] = {
    "auth": 0,
    "tasks": 1,
    "billing": 2,
    "analytics": 3,
    "notifications": 4,
}

"""The notifications service: it consumes events, prints messages, and shows each person
the messages sent to them ("My notifications")."""

from __future__ import annotations

from pathlib import Path

from ates.platform.runtime import ServiceSpec
from ates.services.notifications import pages
from ates.services.notifications.consumers import HANDLERS
from ates.services.notifications.sender import run_sender

SPEC = ServiceSpec(
    name="notifications",
    title="Notifications",
    consumes=HANDLERS,
    routers=(pages.router,),
    templates=Path(__file__).parent / "templates",
    background=(run_sender,),
)

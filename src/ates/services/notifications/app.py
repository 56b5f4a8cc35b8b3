"""The notifications service: no pages; it consumes events and prints messages."""

from __future__ import annotations

from ates.platform.service import ServiceSpec
from ates.services.notifications.handlers import HANDLERS
from ates.services.notifications.sender import run_sender

SPEC = ServiceSpec(
    name="notifications",
    title="Notifications",
    consumes=HANDLERS,
    background=(run_sender,),
)

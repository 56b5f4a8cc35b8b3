from __future__ import annotations

from ates.platform.service import ServiceSpec

SPEC = ServiceSpec(name="notifications", title="Notifications")

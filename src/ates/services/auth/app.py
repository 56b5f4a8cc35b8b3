from __future__ import annotations

from pathlib import Path

from ates.platform.runtime import ServiceSpec
from ates.services.auth import api, pages
from ates.services.auth.oauth import routes as oauth_routes
from ates.services.auth.oauth.provider import start_provider

SPEC = ServiceSpec(
    name="auth",
    title="Auth",
    produces=("accounts",),
    routers=(oauth_routes.router, api.router, pages.router),
    templates=Path(__file__).parent / "templates",
    on_startup=(start_provider,),
    oauth_login=False,  # the provider: its own pages sign people in
)

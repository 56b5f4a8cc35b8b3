"""The OAuth clients auth knows: one per dashboard and the public command-line client.

They are first-party and derived from settings at start-up, so they are always in step
with the URLs the services really have; nothing about them needs storing.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import ClientMixin, list_to_scope, scope_to_list

from ates.config import Settings
from ates.platform.login import first_party_client_secret
from ates.services.auth.domain import redirect_uri_matches

SCOPES = ("openid", "profile", "email")
DASHBOARDS = ("tasks", "billing", "analytics", "notifications", "auth")
CLI_CLIENT_ID = "ates-cli"
CLI_REDIRECT_URI = "http://127.0.0.1/callback"


@dataclass(frozen=True, eq=False)
class Client(ClientMixin):
    client_id: str
    name: str
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    # None: a public client (PKCE only, no secret). Out of repr: Authlib logs clients.
    secret: str | None = field(default=None, repr=False)
    post_logout_redirect_uris: tuple[str, ...] = ()
    frontchannel_logout_uri: str | None = None
    client_metadata: dict[str, Any] = field(default_factory=dict)

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None  # OAuth 2.1: the request must name its redirect URI

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return ""
        return str(list_to_scope([s for s in scope_to_list(scope) if s in SCOPES]))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return any(redirect_uri_matches(r, redirect_uri) for r in self.redirect_uris)

    def check_client_secret(self, client_secret: str) -> bool:
        if self.secret is None:
            return False
        return hmac.compare_digest(self.secret.encode(), client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.secret is None:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


def first_party_clients(settings: Settings) -> dict[str, Client]:
    clients = {}
    for service in DASHBOARDS:
        base = settings.public_url(service)
        home = f"{base}/"
        clients[service] = Client(
            client_id=service,
            name=f"aTES {service} dashboard",
            redirect_uris=(f"{base}/oauth/callback",),
            # dashboards keep the person in their session cookie: no refresh tokens
            grant_types=("authorization_code",),
            secret=first_party_client_secret(settings, service),
            post_logout_redirect_uris=(home,),
            # auth's own pages share its session: nothing to end there
            frontchannel_logout_uri=(
                f"{base}/oauth/frontchannel-logout" if service != "auth" else None
            ),
            client_metadata={"post_logout_redirect_uris": [home]},
        )
    clients[CLI_CLIENT_ID] = Client(
        client_id=CLI_CLIENT_ID,
        name="aTES command line",
        redirect_uris=(CLI_REDIRECT_URI,),
        grant_types=("authorization_code", "refresh_token"),
    )
    return clients

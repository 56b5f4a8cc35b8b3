"""The provider of one auth process: Authlib server, key store, clients, local verifier."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends

from ates.config import Settings
from ates.platform.db import Database
from ates.platform.dependencies import RuntimeDep
from ates.platform.runtime import Runtime, Slot
from ates.platform.security import RemoteJwks, TokenVerifier
from ates.platform.uow import UnitOfWork
from ates.services.auth.oauth.bridge import Call
from ates.services.auth.oauth.clients import Client, first_party_clients
from ates.services.auth.oauth.keys import KeyStore, LocalJwks
from ates.services.auth.oauth.server import Server

PROVIDER = Slot["Provider"]("oauth_provider")


@dataclass
class Provider:
    settings: Settings
    db: Database
    keys: KeyStore
    clients: dict[str, Client]
    server: Server
    verifier: TokenVerifier  # auth's own tokens, checked against the key table

    @asynccontextmanager
    async def call(self, *, auth_time: datetime | None = None) -> AsyncIterator[Call]:
        """One OAuth request's transaction; committed when the block ends normally, also
        when Authlib answered with an error (a replay's revocation must stick)."""
        async with UnitOfWork(self.db, producer="auth") as uow:
            session = uow.session
            yield Call(
                loop=asyncio.get_running_loop(),
                session=session,
                now=datetime.now(UTC),
                signing_key=await self.keys.signing_key(session),
                public_keys=await self.keys.published(session),
                auth_time=auth_time,
            )
            await uow.commit()


def build_provider(settings: Settings, db: Database) -> Provider:
    keys = KeyStore(db)
    clients = first_party_clients(settings)
    return Provider(
        settings=settings,
        db=db,
        keys=keys,
        clients=clients,
        server=Server(settings, clients),
        verifier=TokenVerifier(LocalJwks(keys), issuer=settings.issuer),
    )


async def start_provider(runtime: Runtime) -> None:
    """Start-up hook: make sure a signing key exists and register the first-party clients."""
    provider = build_provider(runtime.settings, runtime.db)
    await provider.keys.ensure_key()
    runtime.slots[PROVIDER] = provider
    own_jwks = f"{runtime.settings.issuer}/.well-known/jwks.json"
    verifier = runtime.verifier
    if isinstance(verifier.jwks, RemoteJwks) and verifier.jwks.url == own_jwks:
        # The default verifier would fetch our own JWKS over HTTP; read the table instead.
        runtime.verifier = provider.verifier


async def current_provider(runtime: RuntimeDep) -> Provider:
    provider = runtime.slots.get(PROVIDER)
    if provider is None:
        raise RuntimeError("the OAuth provider is not started (start_provider did not run)")
    return provider


ProviderDep = Annotated[Provider, Depends(current_provider)]

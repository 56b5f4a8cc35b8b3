"""Verifying bearer JWTs issued by the auth service.

Every service verifies tokens locally against auth's published JWKS (cached, fetched
again when a token names a ``kid`` we do not know), and checks ``iss``, ``aud`` and
``exp``. All JOSE work is joserfc's; nothing here parses a token by hand.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

ROLES = ("admin", "manager", "accountant", "worker")
ALGORITHMS = ["RS256", "ES256", "EdDSA"]
API_AUDIENCE = "ates-api"


class InvalidToken(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Principal:
    """The person a verified token speaks for."""

    public_id: uuid.UUID
    role: str
    username: str
    full_name: str = ""  # the token's ``name`` claim (pages greet people by it)

    @property
    def display_name(self) -> str:
        return self.full_name or self.username

    def has_role(self, *roles: str) -> bool:
        return self.role in roles


class JwksSource:
    """Where verification keys come from."""

    async def keys(self, *, refresh: bool = False) -> KeySet:
        raise NotImplementedError


class StaticJwks(JwksSource):
    def __init__(self, key_set: KeySet) -> None:
        self._key_set = key_set

    async def keys(self, *, refresh: bool = False) -> KeySet:
        return self._key_set


class RemoteJwks(JwksSource):
    """Auth's ``/.well-known/jwks.json``, cached; refetched at most every ``min_refresh`` s."""

    def __init__(self, url: str, *, ttl: float = 300, min_refresh: float = 5) -> None:
        self.url = url
        self.ttl = ttl
        self.min_refresh = min_refresh
        self._key_set: KeySet | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def keys(self, *, refresh: bool = False) -> KeySet:
        age = time.monotonic() - self._fetched_at
        stale = self._key_set is None or age > self.ttl or (refresh and age > self.min_refresh)
        if stale:
            async with self._lock:
                age = time.monotonic() - self._fetched_at
                if self._key_set is None or age > self.ttl or (refresh and age > self.min_refresh):
                    await self._fetch()
        assert self._key_set is not None
        return self._key_set

    async def _fetch(self) -> None:
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                response = await client.get(self.url)
                response.raise_for_status()
                self._key_set = KeySet.import_key_set(response.json())
        except (httpx.HTTPError, ValueError) as error:
            if self._key_set is None:
                raise InvalidToken(f"cannot fetch signing keys from {self.url}: {error}") from error
            return  # keep the keys we have
        self._fetched_at = time.monotonic()


class TokenVerifier:
    """Checks access tokens: signature by one of auth's keys, issuer, audience, expiry,
    subject and role.

    A token that passed is remembered until it expires: a client sends the same token
    with every request for its lifetime, and checking a signature again is most of the
    work of verifying. This changes nothing a token can do — an access token cannot be
    revoked before ``exp`` anyway (which is why they live minutes, docs/auth.md)."""

    def __init__(
        self,
        jwks: JwksSource,
        *,
        issuer: str,
        audience: str = API_AUDIENCE,
        leeway: int = 5,
        remember: int = 10_000,
    ) -> None:
        self.jwks = jwks
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self._remember = remember
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    async def verify(self, token: str) -> Principal:
        known = self._verified.get(token)
        if known is not None and time.time() < known[1]:
            return known[0]
        claims = await self.verify_claims(token)
        try:
            principal = Principal(
                public_id=uuid.UUID(str(claims["sub"])),
                role=str(claims["role"]),
                username=str(claims.get("preferred_username", "")),
                full_name=str(claims.get("name", "")),
            )
            expires = float(claims["exp"])
        except (ValueError, KeyError, TypeError) as error:
            raise InvalidToken(f"token rejected: {error}") from error
        self._verified[token] = (principal, expires)
        if len(self._verified) > self._remember:
            self._verified.popitem(last=False)  # the oldest first
        return principal

    async def verify_claims(self, token: str) -> dict[str, Any]:
        """All claims of a token that passes every check of :meth:`verify`."""
        try:
            header = jws.extract_compact(token.encode()).headers()
        except (JoseError, ValueError) as error:
            raise InvalidToken(f"malformed token: {error}") from error
        if header.get("alg") not in ALGORITHMS:
            raise InvalidToken("token algorithm not allowed")
        kid = header.get("kid")
        key_set = await self.jwks.keys()
        if kid is None or not any(k.kid == kid for k in key_set.keys):
            key_set = await self.jwks.keys(refresh=True)
        try:
            decoded = jwt.decode(token, key_set, algorithms=ALGORITHMS)
            jwt.JWTClaimsRegistry(
                leeway=self.leeway,
                iss={"essential": True, "value": self.issuer},
                aud={"essential": True, "value": self.audience},
                exp={"essential": True},
                sub={"essential": True},
                role={"essential": True, "values": list(ROLES)},
            ).validate(decoded.claims)
            return dict(decoded.claims)
        except (JoseError, ValueError, KeyError) as error:
            raise InvalidToken(f"token rejected: {error}") from error

"""The provider's signing keys, kept in the auth database.

The newest key that is not retired signs. ``rotate`` adds a new key and schedules the
old ones to retire once every token they signed has expired; until then they stay in the
JWKS so those tokens still verify. Every auth process reads the same table, so a key
rotated by ``ates keys rotate`` is used by running processes on their next token.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ates.platform.db import Database
from ates.platform.security import JwksSource
from ates.platform.uow import UnitOfWork
from ates.services.auth.models import SigningKey

ALGORITHM = "RS256"
KEY_SIZE = 2048


def _generate() -> RSAKey:
    key = RSAKey.generate_key(KEY_SIZE, parameters={"use": "sig", "alg": ALGORITHM})
    key.ensure_kid()  # the RFC 7638 thumbprint
    return key


class KeyStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._parsed: dict[str, RSAKey] = {}  # kid -> key; a kid's key never changes

    def _key(self, row: SigningKey) -> RSAKey:
        key = self._parsed.get(row.kid)
        if key is None:
            key = RSAKey.import_key(json.loads(row.private_jwk))
            self._parsed[row.kid] = key
        return key

    async def ensure_key(self) -> None:
        """Create a signing key if there is none (first start)."""
        async with self.db.reader() as session:
            if await self._active_row(session) is not None:
                return
        key = await asyncio.to_thread(_generate)
        async with UnitOfWork(self.db, producer="auth") as uow:
            if await self._active_row(uow.session) is None:
                uow.session.add(_row(key))
                await uow.commit()

    async def rotate(self, *, retire_after: timedelta) -> str:
        """Start signing with a new key; the current ones retire after ``retire_after``."""
        key = await asyncio.to_thread(_generate)
        now = datetime.now(UTC)
        async with UnitOfWork(self.db, producer="auth") as uow:
            await uow.session.execute(
                update(SigningKey)
                .where(SigningKey.retire_at.is_(None))
                .values(retire_at=now + retire_after)
            )
            uow.session.add(_row(key, created_at=now))
            await uow.commit()
        return str(key.kid)

    async def signing_key(self, session: AsyncSession) -> RSAKey:
        row = await self._active_row(session)
        if row is None:
            raise RuntimeError("no signing key: the auth service creates one at start-up")
        return self._key(row)

    async def published(self, session: AsyncSession | None = None) -> KeySet:
        """The public halves of every key that may still have signed a live token."""
        if session is None:
            async with self.db.reader() as reader:
                return await self.published(reader)
        now = datetime.now(UTC)
        rows = (
            await session.scalars(
                select(SigningKey)
                .where(or_(SigningKey.retire_at.is_(None), SigningKey.retire_at > now))
                .order_by(SigningKey.created_at.desc())
            )
        ).all()
        public = [RSAKey.import_key(self._key(row).as_dict(private=False)) for row in rows]
        return KeySet(public)  # type: ignore[arg-type]

    async def list(self) -> list[SigningKey]:
        async with self.db.reader() as session:
            return list(
                (await session.scalars(select(SigningKey).order_by(SigningKey.created_at))).all()
            )

    @staticmethod
    async def _active_row(session: AsyncSession) -> SigningKey | None:
        return await session.scalar(
            select(SigningKey)
            .where(SigningKey.retire_at.is_(None))
            .order_by(SigningKey.created_at.desc())
            .limit(1)
        )


def _row(key: RSAKey, created_at: datetime | None = None) -> SigningKey:
    return SigningKey(
        kid=str(key.kid),
        algorithm=ALGORITHM,
        private_jwk=json.dumps(key.as_dict(private=True)),
        created_at=created_at or datetime.now(UTC),
    )


class LocalJwks(JwksSource):
    """Auth verifies its own tokens from the key table, not over HTTP to itself."""

    def __init__(self, keys: KeyStore) -> None:
        self._keys = keys

    async def keys(self, *, refresh: bool = False) -> KeySet:
        return await self._keys.published()

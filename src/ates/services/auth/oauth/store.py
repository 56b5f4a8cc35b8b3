"""What the provider remembers between requests: authorization codes and refresh tokens.

Only SHA-256 digests of codes and tokens are stored (a leaked table grants nothing).
Codes and refresh tokens are single-use and marked, never deleted, when used: a second
presentation is recognised as a replay and revokes the whole family of refresh tokens
that came from the same sign-in (RFC 9700 §4.14, OWASP ASVS 5 §10.4).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

import structlog
from sqlalchemy import ColumnElement, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ates.services.auth import domain
from ates.services.auth.models import AuthorizationCode, Person, RefreshToken

log = structlog.get_logger(__name__)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def save_code(
    session: AsyncSession,
    code: str,
    *,
    client_id: str,
    redirect_uri: str,
    scope: str,
    person_public_id: str,
    code_challenge: str,
    code_challenge_method: str,
    nonce: str | None,
    auth_time: datetime,
    now: datetime,
) -> None:
    session.add(
        AuthorizationCode(
            code_hash=digest(code),
            client_id=client_id,
            redirect_uri=redirect_uri,
            scope=scope,
            person_public_id=person_public_id,
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
            nonce=nonce,
            auth_time=auth_time,
            created_at=now,
            expires_at=now + domain.AUTHORIZATION_CODE_TTL,
        )
    )
    await session.flush()


async def claim_code(
    session: AsyncSession, code: str, client_id: str, now: datetime
) -> AuthorizationCode | None:
    """The code, if it was issued to ``client_id``, is unexpired and unused; it is marked
    used in this transaction (a failed exchange burns it too). A used code revokes the
    refresh tokens issued for it."""
    row = await session.scalar(
        select(AuthorizationCode)
        .where(AuthorizationCode.code_hash == digest(code))
        .with_for_update()
    )
    if row is None or row.client_id != client_id:
        return None
    if row.used_at is not None:
        log.warning("oauth.code_replayed", client_id=client_id, family_id=row.family_id)
        if row.family_id is not None:
            await revoke_family(session, row.family_id, now)
        return None
    row.used_at = now
    await session.flush()
    return row if row.expires_at > now else None


async def nonce_used(session: AsyncSession, client_id: str, nonce: str) -> bool:
    return bool(
        await session.scalar(
            select(
                exists().where(
                    AuthorizationCode.client_id == client_id, AuthorizationCode.nonce == nonce
                )
            )
        )
    )


async def save_refresh_token(
    session: AsyncSession,
    token: str,
    *,
    client_id: str,
    person_public_id: str,
    scope: str,
    now: datetime,
    previous: RefreshToken | None,
    code: AuthorizationCode | None,
) -> RefreshToken:
    """Store a new refresh token: the next of ``previous``'s family, or a new family
    started by ``code``."""
    family_id = previous.family_id if previous is not None else str(uuid.uuid4())
    started = previous.family_started_at if previous is not None else now
    row = RefreshToken(
        token_hash=digest(token),
        family_id=family_id,
        client_id=client_id,
        person_public_id=person_public_id,
        scope=scope,
        issued_at=now,
        family_started_at=started,
        expires_at=domain.refresh_token_expiry(now, started),
    )
    session.add(row)
    if code is not None:
        code.family_id = family_id
    await session.flush()
    return row


async def claim_refresh_token(
    session: AsyncSession, token: str, client_id: str, now: datetime
) -> RefreshToken | None:
    """The refresh token if it is live, was issued to ``client_id`` and its person is
    active. A token presented after it was rotated is a replay: its family is revoked."""
    row = await session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == digest(token)).with_for_update()
    )
    if row is None or row.client_id != client_id or row.revoked_at is not None:
        return None
    if row.used_at is not None:
        log.warning("oauth.refresh_token_replayed", client_id=client_id, family_id=row.family_id)
        await revoke_family(session, row.family_id, now)
        return None
    if row.expires_at <= now:
        return None
    active = await session.scalar(
        select(Person.active).where(Person.public_id == row.person_public_id)
    )
    return row if active else None


async def mark_used(session: AsyncSession, row: RefreshToken, now: datetime) -> None:
    row.used_at = now
    await session.flush()


async def revoke_family(session: AsyncSession, family_id: str, now: datetime) -> None:
    await _revoke(session, RefreshToken.family_id == family_id, now)


async def revoke_person_tokens(session: AsyncSession, person_public_id: str, now: datetime) -> None:
    await _revoke(session, RefreshToken.person_public_id == person_public_id, now)


async def _revoke(session: AsyncSession, which: ColumnElement[bool], now: datetime) -> None:
    """Revoke the refresh tokens ``which`` selects that are not revoked yet."""
    await session.execute(
        update(RefreshToken).where(which, RefreshToken.revoked_at.is_(None)).values(revoked_at=now)
    )

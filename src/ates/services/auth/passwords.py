"""Password hashing: argon2id with OWASP's parameters (19 MiB, 2 iterations, 1 lane)."""

from __future__ import annotations

import asyncio
import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def _decoy_hash() -> str:
    return hash_password("decoy password, never anyone's")


async def check_password(password_hash: str | None, password: str) -> bool:
    """Verify off the event loop (argon2 takes tens of milliseconds of CPU). Without a hash
    (unknown username) a decoy is verified, so a wrong username costs the same time as a
    wrong password and answer times do not tell which usernames exist."""
    if password_hash is None:
        await asyncio.to_thread(lambda: verify_password(_decoy_hash(), password))
        return False
    return await asyncio.to_thread(verify_password, password_hash, password)

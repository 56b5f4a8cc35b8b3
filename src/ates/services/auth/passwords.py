"""Password hashing: argon2id with OWASP's parameters (19 MiB, 2 iterations, 1 lane).

Hashing takes tens of milliseconds of CPU and 19 MiB of memory, so it runs off the event
loop on a pool of its own, two threads wide: at most two hashes at a time, whatever the
number of sign-ins waiting, which bounds the service's memory (each thread's allocator
keeps what a hash used) and leaves the machine's other core to everything else.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="argon2")


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


async def new_password_hash(password: str) -> str:
    """:func:`hash_password` on the hashing pool."""
    return await asyncio.get_running_loop().run_in_executor(_pool, hash_password, password)


async def check_password(password_hash: str | None, password: str) -> bool:
    """Verify on the hashing pool. Without a hash (unknown username) a decoy is verified,
    so a wrong username costs the same time as a wrong password and answer times do not
    tell which usernames exist."""
    loop = asyncio.get_running_loop()
    if password_hash is None:
        await loop.run_in_executor(_pool, lambda: verify_password(_decoy_hash(), password))
        return False
    return await loop.run_in_executor(_pool, verify_password, password_hash, password)

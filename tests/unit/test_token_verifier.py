"""The token verifier remembers a token it accepted, and only until the token expires."""

from __future__ import annotations

import time
import uuid

import pytest
from joserfc.jwk import KeySet

from ates.platform.security import InvalidToken, JwksSource, TokenVerifier
from tests.support import ISSUER, TokenFactory


class CountingKeys(JwksSource):
    """The test's public keys, counting how often the verifier needs them."""

    def __init__(self, key_set: KeySet) -> None:
        self.key_set = key_set
        self.asked = 0

    async def keys(self, *, refresh: bool = False) -> KeySet:
        self.asked += 1
        return self.key_set


@pytest.fixture
def keys(tokens: TokenFactory) -> CountingKeys:
    return CountingKeys(KeySet.import_key_set(tokens.key_set.as_dict(private=False)))


async def test_a_token_checked_once_is_not_checked_again_while_it_lives(
    tokens: TokenFactory, keys: CountingKeys
) -> None:
    verifier = TokenVerifier(keys, issuer=ISSUER)
    person = uuid.uuid4()
    token = tokens.token("worker", person)
    first = await verifier.verify(token)
    asked = keys.asked
    again = await verifier.verify(token)
    assert first == again and again.public_id == person
    assert keys.asked == asked, "the signature was checked again"
    other = await verifier.verify(tokens.token("manager"))
    assert other.role == "manager"
    assert keys.asked > asked


async def test_a_remembered_token_is_refused_once_it_expires(
    tokens: TokenFactory, keys: CountingKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = TokenVerifier(keys, issuer=ISSUER, leeway=0)
    token = tokens.token("worker", ttl=60)
    await verifier.verify(token)
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(InvalidToken):
        await verifier.verify(token)


async def test_a_refused_token_is_not_remembered(tokens: TokenFactory, keys: CountingKeys) -> None:
    verifier = TokenVerifier(keys, issuer=ISSUER)
    expired = tokens.token("worker", ttl=-120)
    for _ in range(2):
        with pytest.raises(InvalidToken):
            await verifier.verify(expired)

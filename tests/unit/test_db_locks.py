"""Lock names map to the same 64-bit advisory-lock key in every process."""

from __future__ import annotations

from ates.platform.db import lock_key


def test_a_lock_name_has_one_stable_signed_64_bit_key() -> None:
    key = lock_key("close-day 2025-03-03")
    assert key == lock_key("close-day 2025-03-03")  # not Python's per-process hash()
    assert -(2**63) <= key < 2**63
    assert key != lock_key("close-day 2025-03-04")

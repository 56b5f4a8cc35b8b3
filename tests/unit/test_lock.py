"""The lock files (requirements/*.txt) pin every dependency pyproject.toml declares, at a
version its specifier allows: an install from the lock is an install of this project."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def pinned(lock: str) -> dict[str, str]:
    text = (ROOT / "requirements" / lock).read_text()
    return {
        canonicalize_name(name): version
        for name, version in re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", text, re.MULTILINE)
    }


@pytest.mark.parametrize(
    ("lock", "declared"),
    [
        ("main.txt", PROJECT["dependencies"]),
        ("dev.txt", PROJECT["dependencies"] + PROJECT["optional-dependencies"]["dev"]),
    ],
)
def test_the_lock_pins_every_declared_dependency_within_its_range(
    lock: str, declared: list[str]
) -> None:
    versions = pinned(lock)
    wrong = []
    for line in declared:
        requirement = Requirement(line)
        version = versions.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            wrong.append(f"{requirement} -> {version or 'not in the lock'}")
    assert not wrong, f"requirements/{lock} is stale (regenerate it): {wrong}"


def test_every_pin_carries_hashes() -> None:
    for lock in ("main.txt", "dev.txt"):
        text = (ROOT / "requirements" / lock).read_text()
        entries = re.split(r"\n(?=[A-Za-z0-9._-]+==)", text.split("\n", 3)[3])
        assert entries and all("--hash=sha256:" in entry for entry in entries), lock

"""The suite's own rules, checked by running the suite: a test that needs PostgreSQL gets
it from the suite's fixtures (``tests.backends``), so under ``CI=true`` a missing server
fails it rather than skipping it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "test",
    [
        "tests/integration/test_database_postgres.py::TestPostgresDatabase::test_two_shuffles_at_once_keep_every_chain"
    ],
)
def test_a_postgresql_test_fails_under_ci_when_postgresql_is_missing(test: str) -> None:
    with socket.socket() as nobody:  # a port that refuses connections: no PostgreSQL there
        nobody.bind(("127.0.0.1", 0))
        port = nobody.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                test,
                "-q",
                "-p",
                "no:randomly",
                "-p",
                "no:cacheprovider",
            ],
            cwd=ROOT,
            env={
                **os.environ,
                "CI": "true",
                "TEST_POSTGRES_DSN": f"postgresql://postgres@127.0.0.1:{port}/postgres",
            },
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert result.returncode == 1, result.stdout  # failed (at setup), not skipped
    assert "skipped" not in result.stdout
    assert "CI=true, so a missing server is a failure" in result.stdout

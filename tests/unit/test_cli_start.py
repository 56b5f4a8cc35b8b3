"""The command line starts at once: printing help loads none of what the services are
built of (FastAPI, SQLAlchemy, Alembic…); each command imports that when it runs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# (pydantic is not here: typer itself loads it, for commands with pydantic-typed options)
HEAVY = ("fastapi", "starlette", "sqlalchemy", "alembic", "httpx", "structlog", "jinja2", "rich")

PROBE = """
import json, sys
sys.argv = ["ates", *json.loads(sys.argv[1])]
try:
    from ates.cli import main
    main()
except SystemExit:
    pass
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args",
    [["--help"], ["users", "--help"], ["billing", "close-day", "--help"], ["replay", "--help"]],
    ids=" ".join,
)
def test_help_imports_none_of_the_service_stack(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "Usage: ates" in done.stdout
    loaded = set(json.loads(done.stderr.strip().splitlines()[-1]))
    assert not loaded & set(HEAVY), f"ates {' '.join(args)} imported {loaded & set(HEAVY)}"


def test_help_reads_as_sentences_without_markup() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ates", "token", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "``" not in done.stdout and ":func:" not in done.stdout
    assert "Print an access token for USERNAME, for scripts and curl." in done.stdout

#!/usr/bin/env python3
"""Bootstrap for a fresh machine with only Python 3.11+ and pip.

    python3 dev.py up     # create .venv, install aTES, start the whole system
    python3 dev.py test   # create .venv, install aTES with its test tools, run every check

Anything after the word is passed on (``python3 dev.py up --port-base 9000``,
``python3 dev.py test -k billing``). Standard library only.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
LOCK = ROOT / "requirements" / "dev.txt"  # pyproject.toml's dependencies and [dev], locked


def ensure_venv() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"aTES needs Python 3.11 or newer, this is {sys.version.split()[0]}")
    digest = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + LOCK.read_bytes()
    ).hexdigest()
    stamp = VENV / ".ates-installed"
    if stamp.exists() and stamp.read_text() == digest and PYTHON.exists():
        return
    if not PYTHON.exists():
        print("creating .venv …", flush=True)
        venv.create(VENV, with_pip=True)
    print("installing aTES and its tools into .venv …", flush=True)
    pip = [str(PYTHON), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    # the locked versions, each file checked against its hash; then aTES itself
    subprocess.run([*pip, "--require-hashes", "-r", str(LOCK)], check=True)
    subprocess.run([*pip, "--no-deps", "-e", str(ROOT)], check=True)
    stamp.write_text(digest)


def run(*argv: str) -> None:
    result = subprocess.run(argv, cwd=ROOT)
    if result.returncode:
        sys.exit(result.returncode)


def main() -> None:
    word, rest = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if word not in ("up", "test"):
        sys.exit(__doc__)
    ensure_venv()
    if word == "up":
        os.execv(str(BIN / "ates"), [str(BIN / "ates"), "up", *rest])
    tool = str(BIN / "ruff")
    run(tool, "check", "src", "tests")
    run(tool, "format", "--check", "src", "tests")
    run(str(BIN / "mypy"))
    run(str(BIN / "ates"), "schemas", "check")
    run(str(PYTHON), "-m", "pytest", *rest)


if __name__ == "__main__":
    main()

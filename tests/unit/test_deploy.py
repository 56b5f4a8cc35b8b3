"""The deployment files are accepted by the tools that read them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_config_accepts_the_production_topology(tmp_path: Path) -> None:
    command = _compose_command()
    if command is None:
        message = "neither `docker compose` nor `docker-compose` is installed"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message + " (apt-get install docker-compose)")
    result = subprocess.run(
        [
            *command,
            "--project-directory",
            str(ROOT),
            "-f",
            str(ROOT / "docker-compose.yml"),
            "config",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COMPOSE_PROJECT_NAME": "ates"},
    )
    assert result.returncode == 0, result.stderr
    # the resolved file lists each service as a two-space-indented key under `services:`
    top_level = ("\n" + result.stdout).split("\nservices:\n", 1)[1]
    services = {
        line.strip().rstrip(":")
        for line in top_level.splitlines()
        if line.startswith("  ") and not line.startswith("   ") and line.endswith(":")
    }
    assert {
        "postgres",
        "rabbitmq",
        "caddy",
        "migrate",
        "auth",
        "tasks",
        "billing",
        "analytics",
        "notifications",
    } <= services, services

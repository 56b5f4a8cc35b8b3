"""The deployment files are accepted by the tools that read them, and say what the
operations page says: one broker per deployment, chosen in `.env`, and every aTES
container told how to reach it."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
ATES = ("migrate", "auth", "tasks", "billing", "analytics", "notifications")


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def _config(**settings: str) -> subprocess.CompletedProcess[str]:
    """``docker compose config`` of the file with these ``.env`` settings: the file as
    compose understands it (anchors merged, ``extends`` followed, variables filled in)."""
    command = _compose_command()
    if command is None:
        message = "neither `docker compose` nor `docker-compose` is installed"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message + " (apt-get install docker-compose)")
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ATES_", "COMPOSE_", "POSTGRES_"))  # a developer's own .env
    }
    compose_file = str(ROOT / "docker-compose.yml")
    return subprocess.run(
        [*command, "--project-directory", str(ROOT), "-f", compose_file, "config"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**environment, "COMPOSE_PROJECT_NAME": "ates", **settings},
    )


@functools.cache
def _resolved(**settings: str) -> str:
    result = _config(**settings)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _services(resolved: str) -> dict[str, list[str]]:
    """Each service's block of the resolved file (its lines), by name: the keys indented
    two spaces under the top-level ``services:``."""
    block = ("\n" + resolved).split("\nservices:\n", 1)[1]
    services: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in block.splitlines():
        if line and not line.startswith(" "):
            break  # the next top-level key
        if line.startswith("  ") and not line.startswith("   ") and line.endswith(":"):
            current = services.setdefault(line.strip().rstrip(":"), [])
        elif current is not None:
            current.append(line)
    return services


def _under(lines: list[str], key: str) -> list[str]:
    """The lines nested under a service's ``key:`` (``environment``, ``profiles``…),
    their indentation removed."""
    found: list[str] = []
    inside = False
    for line in lines:
        if line.startswith(f"    {key}:"):
            inside = True
            inline = line.partition(":")[2].strip()  # `profiles: [a, b]`
            if inline:
                return [f"- {item.strip()}" for item in inline.strip("[]").split(",")]
        elif inside and (line.startswith("     ") or line.startswith("    - ")):
            found.append(line.strip())
        elif inside:
            break
    return found


def _mapping(lines: list[str], key: str) -> dict[str, str]:
    """A service's ``key:`` mapping (``environment``), values unquoted."""
    found: dict[str, str] = {}
    for line in _under(lines, key):
        name, _, value = line.partition(": ")
        found[name] = value.strip().strip("'\"")
    return found


def _listed(lines: list[str], key: str) -> list[str]:
    """A service's ``key:`` list (``profiles``), or the keys of its mapping
    (``depends_on``: the services it waits for)."""
    items = _under(lines, key)
    return [i.removeprefix("- ").strip("'\"") for i in items if i.startswith("- ")] or [
        i.rstrip(":") for i in items if i.endswith(":")
    ]


def test_compose_config_accepts_the_production_topology() -> None:
    services = _services(_resolved(COMPOSE_PROFILES="rabbitmq"))
    assert {"postgres", "rabbitmq", "caddy", *ATES} <= set(services), services


def test_without_a_choice_the_services_reach_rabbitmq_with_its_password() -> None:
    services = _services(_resolved(ATES_BROKER_PASSWORD="s3cret"))
    for name in ATES:
        env = _mapping(services[name], "environment")
        assert env["ATES_BROKER_URL"] == "amqp://ates:s3cret@rabbitmq:5672/ates", name
    assert _mapping(services["rabbitmq"], "environment")["RABBITMQ_DEFAULT_PASS"] == "s3cret"


def test_each_broker_runs_only_under_its_own_profile() -> None:
    services = _services(_resolved(COMPOSE_PROFILES="kafka", ATES_BROKER="kafka"))
    assert _listed(services["kafka"], "profiles") == ["kafka"]
    if "rabbitmq" in services:  # docker-compose v1 lists inactive profiles' services too
        assert _listed(services["rabbitmq"], "profiles") == ["rabbitmq"]
    for name in ("postgres", "caddy", *ATES):
        assert _listed(services[name], "profiles") == [], f"{name} runs whichever the broker"
        # and waits for no broker's container: the one it waits for might not be started
        assert not {"rabbitmq", "kafka"} & set(_listed(services[name], "depends_on")), name


def test_the_kafka_profile_gives_every_service_the_kafka_url() -> None:
    services = _services(_resolved(COMPOSE_PROFILES="kafka", ATES_BROKER="kafka"))
    for name in ATES:
        env = _mapping(services[name], "environment")
        assert env["ATES_BROKER_URL"] == "kafka://kafka:9092", name


def test_kafka_runs_in_kraft_mode_as_one_node() -> None:
    kafka = _services(_resolved(COMPOSE_PROFILES="kafka", ATES_BROKER="kafka"))["kafka"]
    assert any(line.strip() == "image: apache/kafka:4.3.1" for line in kafka), kafka
    env = _mapping(kafka, "environment")
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft: no ZooKeeper
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert env["CLUSTER_ID"]  # the image formats the storage with it on the first start
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    for setting in (  # one node: the internal topics cannot have more replicas
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR",
    ):
        assert env[setting] == "1", setting
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # aTES makes its topics
    assert env["KAFKA_LOG_FLUSH_INTERVAL_MESSAGES"] == "1"  # no replica: fsync instead
    assert "-Xmx512m" in env["KAFKA_HEAP_OPTS"]
    assert "kafka-data:/var/lib/kafka/data" in " ".join(_listed(kafka, "volumes"))


def test_an_unknown_broker_is_refused() -> None:
    result = _config(ATES_BROKER="zeromq")
    assert result.returncode != 0
    assert "ates-on-zeromq" in result.stderr + result.stdout


def test_the_env_example_chooses_one_broker_with_both_settings() -> None:
    lines = (ROOT / "deploy" / "ates.env.example").read_text().splitlines()
    settings = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    assert settings["COMPOSE_PROFILES"] == settings["ATES_BROKER"] == "rabbitmq"
    assert "# COMPOSE_PROFILES=kafka" in lines and "# ATES_BROKER=kafka" in lines

"""``ates bench system --quick --json``: the whole-system benchmark starts its own embedded
stack (or, with ``--production --broker kafka``, the production topology on a Kafka broker
of its own), drives it through the public API, and reports every figure, with the money
checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.stack import clean_env
from tests.kafka import kafka_jars

__all__ = ["kafka_jars"]  # a fixture the Kafka run uses

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("auth", "tasks", "billing", "analytics", "notifications", "nats-server")


@pytest.mark.timeout(900)
def test_a_quick_run_reports_every_figure_and_the_money_adds_up(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ates", "bench", "system", "--root", str(ROOT), "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=840,
        cwd=tmp_path,
        env=clean_env(TMPDIR=str(tmp_path)),  # its stack's data dir, removed with tmp_path
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    doc = json.loads(result.stdout)  # stdout is the document alone
    assert doc["ok"] and doc["error"] is None
    assert doc["mode"] == "embedded"
    assert doc["machine"]["cores"] >= 1 and doc["machine"]["cpu_model"]
    assert len(doc["load_average"]["start"]) == len(doc["load_average"]["end"]) == 3

    # every money check ran, after phase 1 and after all phases, and passed
    names = {check["name"] for check in doc["checks"]}
    for name in (
        "every task: one fee and one reward",
        "booked amounts = billing's prices",
        "billing dashboard = its events, per day",
        "dashboard moved by Σ fees - Σ rewards",
        "every worker's balance",
        "analytics = billing",
        "analytics' debtors = billing's balances",
    ):
        assert name in names and f"all phases: {name}" in names
    assert all(check["ok"] for check in doc["checks"]), doc["checks"]

    # phase 1: the closed loop's rates, events per lifecycle as JetStream counted them,
    # the CPU of every process per lifecycle
    t = doc["throughput"]
    assert t["lifecycles"] == 200
    assert 0 < t["applied_lifecycles_per_s"] <= t["http_lifecycles_per_s"]
    assert t["http_seconds"] <= t["billing_applied_seconds"] <= t["applied_seconds"]
    assert t["events"]["source"].startswith("counted by JetStream")
    assert t["events"]["published_per_lifecycle"] >= 6  # 3 by tasks, 3 by billing
    # billing 3 and analytics 6 by the time they applied everything (notifications' 2 may trail)
    assert t["events"]["consumed_per_lifecycle"] >= 9
    for service in SERVICES:
        assert t["cpu_ms_per_lifecycle"][service] > 0, service
        assert doc["peak_rss_mb"][service] > 0, service
    assert t["cpu_ms_system_total"] > 0 and t["cpu_ms_bench"] > 0
    assert len(t["share_of_ceilings"]) == 3

    # phase 2: lag at each offered rate; phase 3: dashboards meanwhile
    assert [r["offered_per_s"] for r in doc["lag"]] == [5, 20]
    for rate in doc["lag"]:
        assert rate["launched"] == rate["offered_per_s"] * 5
        assert 0 <= rate["lag_ms"]["p50"] <= rate["lag_ms"]["p99"] <= rate["lag_ms"]["max"]
        assert isinstance(rate["kept_up"], bool)
    for service in ("billing", "analytics"):
        assert doc["dashboards"][service]["count"] > 0

    # phase 5: the ceilings of the machine; no phase 4 in a quick run
    assert doc["shuffle"] is None
    assert all(value > 0 for value in doc["ceilings"].values())


@pytest.mark.postgres
@pytest.mark.kafka
@pytest.mark.timeout(900)
def test_the_production_topology_on_a_kafka_of_its_own(
    tmp_path: Path, postgres_dsn: str, kafka_jars: Path
) -> None:
    bench = [sys.executable, "-m", "ates", "bench", "system", "--root", str(ROOT)]
    result = subprocess.run(
        [*bench, "--quick", "--no-ceilings", "--production", "--broker", "kafka", "--json"],
        capture_output=True,
        text=True,
        timeout=840,
        cwd=tmp_path,
        env=clean_env(TMPDIR=str(tmp_path)),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    doc = json.loads(result.stdout)
    assert doc["ok"] and doc["error"] is None
    assert doc["mode"] == "production (kafka)"
    assert all(check["ok"] for check in doc["checks"]) and doc["checks"], doc["checks"]
    t = doc["throughput"]
    assert t["lifecycles"] == 200
    assert t["events"]["source"] == "from the event catalog"  # Kafka counts nothing for us
    # the broker the bench started is part of the system: its CPU and memory are counted
    for process in ("tasks", "billing", "analytics", "notifications", "kafka"):
        assert t["cpu_ms_per_lifecycle"][process] > 0, process
        assert doc["peak_rss_mb"][process] > 0, process
    assert [r["offered_per_s"] for r in doc["lag"]] == [5, 20]

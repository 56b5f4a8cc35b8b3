"""``ates simulate`` against the real system: after a simulated day the figures every
service shows through its API agree with each other and with the books' own rules."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from ates.password_login import password_login
from ates.platform.money import format_cents
from tests.e2e.stack import Stack, clean_env, reserve_ports
from tests.support import eventually

pytestmark = pytest.mark.e2e

WORKERS, TASKS, SHUFFLES, RATIO = 3, 20, 2, 0.5


def _wait(check: Any, timeout: float = 30) -> Any:
    async def _check() -> Any:
        return check()

    return asyncio.run(eventually(_check, timeout=timeout, interval=0.3))


def _simulated_logins(data_dir: Path) -> dict[str, str]:
    rows = (data_dir / "simulated-logins.txt").read_text().splitlines()
    return {u: p for u, _, p in (row.split("\t") for row in rows)}


def test_a_simulated_day_adds_up_in_every_service(stack: Stack) -> None:
    result = stack.ates(
        "simulate",
        "--workers",
        str(WORKERS),
        "--tasks",
        str(TASKS),
        "--shuffles",
        str(SHUFFLES),
        "--complete-ratio",
        str(RATIO),
        "--close-day",
        "--seed",
        "42",
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    with (
        stack.api("auth", "admin") as auth,
        stack.api("tasks", "admin") as tasks,
        stack.api("billing", "accountant") as billing,
    ):
        people = auth.get("/api/users").json()

        # the new workers exist, are workers, and can sign in with the printed password
        created = _simulated_logins(stack.data_dir)
        assert len(created) == WORKERS
        by_name = {p["username"]: p for p in people}
        for username, password in created.items():
            assert by_name[username]["role"] == "worker" and by_name[username]["active"]
            assert password in result.stdout
            assert password_login(stack.url("auth"), username, password)["access_token"]

        # the tasks: all made, half of them done (each by its assignee, or it would be 403)
        listed = tasks.get("/api/tasks", params={"assignee": "all", "limit": 200}).json()
        assert len(listed) == TASKS
        done = [t for t in listed if t["status"] == "done"]
        assert len(done) == TASKS * RATIO

        # billing: every assignment charged the task's own fee, every completion paid its
        # reward, today's management earnings are fees minus rewards
        board = billing.get("/api/dashboard").json()
        today = date.fromisoformat(board["date"])
        log = {
            p["public_id"]: billing.get(
                f"/api/accounts/{p['public_id']}/transactions", params={"date": today.isoformat()}
            ).json()
            for p in people
        }
        movements = [m for entries in log.values() for m in entries]
        fees = [m for m in movements if m["kind"] == "assign_fee"]
        rewards = [m for m in movements if m["kind"] == "reward"]
        assert len(fees) == TASKS * (1 + SHUFFLES)
        assert len(rewards) == len(done)
        prices = {
            t["public_id"]: billing.get(f"/api/tasks/{t['public_id']}/price").json() for t in listed
        }
        for fee in fees:
            assert fee["debit_cents"] == prices[fee["task_public_id"]]["assign_fee_cents"]
        for reward in rewards:
            assert reward["credit_cents"] == prices[reward["task_public_id"]]["reward_cents"]
        fees_cents = sum(m["debit_cents"] for m in fees)
        rewards_cents = sum(m["credit_cents"] for m in rewards)
        assert board["management_earnings_cents"] == fees_cents - rewards_cents
        assert format_cents(fees_cents - rewards_cents) in result.stdout

        # the day was closed: whoever ended it in credit was paid exactly that, and no
        # positive balance is left; debts carry over
        negative = 0
        for person in people:
            entries = log[person["public_id"]]
            earned = [m for m in entries if m["kind"] != "payout"]
            net = sum(m["credit_cents"] - m["debit_cents"] for m in earned)
            paid = sum(m["debit_cents"] for m in entries if m["kind"] == "payout")
            balance = billing.get(f"/api/accounts/{person['public_id']}").json()["balance_cents"]
            assert paid == max(net, 0), person["username"]
            assert balance == min(net, 0), person["username"]
            negative += person["role"] == "worker" and balance < 0
        assert negative > 0  # three assignments per task and half done: some owe money

    # analytics hears the same through events
    with stack.api("analytics", "admin") as analytics:

        def agrees() -> bool:
            seen = analytics.get("/api/dashboard").json()
            return bool(
                seen["management_earnings_cents"] == board["management_earnings_cents"]
                and seen["negative_balance_workers"] == negative
            )

        _wait(agrees)

    verify = stack.ates("billing", "verify", check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "books ok" in verify.stdout


def test_without_demo_logins_it_says_where_it_looked(tmp_path: Path) -> None:
    result = _simulate(tmp_path, "--tasks", "1")
    assert result.returncode == 1
    assert "demo-logins.txt" in result.stderr
    assert "ates up" in result.stderr
    assert "Traceback" not in result.stderr


def test_without_a_running_system_it_says_auth_cannot_be_reached(tmp_path: Path) -> None:
    (tmp_path / "demo-logins.txt").write_text("admin\tadmin\tsome-password\n")
    ports = reserve_ports()  # held, never listening: nothing answers there
    port = ports.base
    try:
        result = _simulate(tmp_path, "--port-base", str(port))
    finally:
        ports.release()
    assert result.returncode == 1
    assert f"cannot reach auth at http://127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def _simulate(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ates", "simulate", "--data-dir", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(COLUMNS="200"),
    )

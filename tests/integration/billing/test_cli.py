"""``ates billing close-day`` and ``ates billing verify`` on a real billing database."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from ates.cli import app
from ates.platform import migrations
from ates.platform.db import Database
from ates.platform.money import format_cents
from tests.integration.billing import events as ev
from tests.integration.billing.books import Books

pytestmark = pytest.mark.integration


def _ates(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def _earner(data_dir: Path) -> tuple[str, int]:
    """A billing database with one worker who earned money today."""

    async def _main() -> tuple[str, int]:
        db = Database(f"sqlite+aiosqlite:///{data_dir / 'billing.db'}")
        await migrations.upgrade("billing", db)
        books = Books(db, random.Random(3))
        worker, task = ev.new_id(), ev.new_id()
        await books.apply(ev.task_assigned(task, worker))
        await books.apply(ev.task_completed(task, worker))
        balance = await books.balance(worker)
        await db.dispose()
        return worker, balance

    return asyncio.run(_main())


def test_close_day_pays_once_and_refuses_the_future(tmp_path: Path) -> None:
    worker, earned = _earner(tmp_path)
    today = datetime.now(UTC).date()
    tomorrow = (today + timedelta(days=1)).isoformat()

    code, output = _ates("billing", "close-day", tomorrow, "--data-dir", str(tmp_path))
    assert code == 2
    assert f"date: {tomorrow} is in the future" in output

    code, output = _ates("billing", "close-day", "3/3/2026", "--data-dir", str(tmp_path))
    assert code == 2 and "is not a date (YYYY-MM-DD)" in output

    code, output = _ates("billing", "close-day", today.isoformat(), "--data-dir", str(tmp_path))
    assert code == 0, output
    assert f"closed {today.isoformat()}: 1 payouts" in output
    assert worker in output

    code, output = _ates("billing", "close-day", today.isoformat(), "--data-dir", str(tmp_path))
    assert code == 0
    assert "was already closed: nothing paid again" in output
    assert earned > 0

    code, output = _ates("billing", "verify", "--data-dir", str(tmp_path))
    assert code == 0, output
    assert output.startswith("books ok")


def test_verify_exits_non_zero_on_a_breach(tmp_path: Path) -> None:
    _earner(tmp_path)

    async def _tamper() -> None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'billing.db'}")
        async with db.sessions() as session, session.begin():
            await session.execute(sa.text("UPDATE accounts SET balance_cents = 0"))
        await db.dispose()

    asyncio.run(_tamper())
    code, output = _ates("billing", "verify", "--data-dir", str(tmp_path))
    assert code == 1
    assert "cached balance" in output
    assert "problems in the books" in output


def test_closing_a_range_of_open_days_reports_the_total_of_every_day(tmp_path: Path) -> None:
    today = datetime.now(UTC).date()
    first, second = today - timedelta(days=2), today - timedelta(days=1)

    async def _two_days_of_earnings() -> dict[str, int]:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'billing.db'}")
        await migrations.upgrade("billing", db)
        books = Books(db, random.Random(5))
        worker, earned = ev.new_id(), {}
        for day in (first, second):
            task, noon = ev.new_id(), datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
            await books.apply(ev.task_assigned(task, worker, at=noon))
            await books.apply(ev.task_completed(task, worker, at=noon))
            log = await books.log(worker, day)
            earned[day.isoformat()] = sum(m.credit_cents - m.debit_cents for m in log)
        await db.dispose()
        return earned

    earned = asyncio.run(_two_days_of_earnings())
    assert all(cents > 0 for cents in earned.values())

    code, output = _ates("billing", "close-day", second.isoformat(), "--data-dir", str(tmp_path))
    assert code == 0, output
    total = format_cents(sum(earned.values()))
    assert f"closed {second.isoformat()}: 2 payouts, {total} paid out" in output
    for day, cents in earned.items():
        assert f"{day}  " in output and format_cents(cents) in output


def test_a_command_logs_through_the_platform_pipeline_not_into_its_output(
    tmp_path: Path,
) -> None:
    # every mode logs through ates.platform.telemetry (redacted, no local variables in
    # tracebacks), the command line too: its own stdout carries only what it reports
    _earner(tmp_path)
    today = datetime.now(UTC).date().isoformat()
    done = subprocess.run(
        [sys.executable, "-m", "ates", "billing", "close-day", today, "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("ATES_")},
    )
    assert done.returncode == 0, done.stderr
    assert f"closed {today}: 1 payouts" in done.stdout
    assert "billing.day_closed" not in done.stdout + done.stderr, "info is below WARNING"

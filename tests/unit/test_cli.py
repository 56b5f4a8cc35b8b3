from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from ates.cli import app

ROOT = Path(__file__).parents[2]
runner = CliRunner()


def test_bench_lists_the_benchmarks_of_the_checkout() -> None:
    result = runner.invoke(app, ["bench", "--root", str(ROOT)])
    assert result.exit_code == 0
    assert "tasks_bench" in result.output.split()
    assert "tasks_server" not in result.output  # a helper process, not a benchmark


def test_bench_refuses_an_unknown_name_and_a_folder_without_benchmarks(tmp_path: Path) -> None:
    unknown = runner.invoke(app, ["bench", "nope", "--root", str(ROOT)])
    assert unknown.exit_code == 2
    assert "unknown benchmark 'nope'" in unknown.output
    empty = runner.invoke(app, ["bench", "--root", str(tmp_path)])
    assert empty.exit_code == 2
    assert "no benchmarks in" in empty.output

"""The run's figures as rich tables (the JSON document is the same dictionary)."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


class Ui:
    """Progress bars on stderr; the report goes to stdout at the end."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("{task.description:<44}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )

    def bar(self, description: str, total: float | None) -> Callable[..., None]:
        task = self.progress.add_task(description, total=total)

        def update(advance: float = 1, completed: float | None = None) -> None:
            if completed is not None:
                self.progress.update(task, completed=completed)
            else:
                self.progress.advance(task, advance)

        return update

    def say(self, text: str) -> None:
        self.progress.console.print(text, highlight=False)


def percentiles(seconds: Sequence[float]) -> dict[str, float] | None:
    """p50/p95/p99/max in milliseconds (None for no samples)."""
    if not seconds:
        return None
    ms = sorted(s * 1000 for s in seconds)
    cuts = [ms[0]] * 99 if len(ms) == 1 else statistics.quantiles(ms, n=100, method="inclusive")
    return {
        "count": len(ms),
        "p50": round(cuts[49], 1),
        "p95": round(cuts[94], 1),
        "p99": round(cuts[98], 1),
        "max": round(ms[-1], 1),
    }


def _ms(p: dict[str, float] | None) -> str:
    if not p:
        return "-"
    return f"{p['p50']:,.0f} / {p['p95']:,.0f} / {p['p99']:,.0f} / {p['max']:,.0f}"


def _n(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def render(doc: dict[str, Any], console: Console) -> None:
    m = doc["machine"]
    console.print(
        f"[bold]ates bench system[/] — {doc['mode']} — {doc['when']}\n"
        f"{m['cores']} cores, {m['cpu_model']}, Python {m['python']}; load average "
        f"{doc['load_average']['start']} at the start, {doc['load_average'].get('end')} at the end",
        highlight=False,
    )
    t = doc.get("throughput")
    if t:
        table = Table(
            title=f"Throughput, closed loop ({t['lifecycles']} lifecycles, "
            f"{doc['settings']['in_flight']} in flight)",
            title_justify="left",
        )
        table.add_column("what")
        table.add_column("figure", justify="right")
        table.add_row("lifecycles/s, HTTP side", _n(t["http_lifecycles_per_s"]))
        table.add_row(
            "lifecycles/s, fully applied (billing + analytics)",
            f"[bold]{_n(t['applied_lifecycles_per_s'])}[/]",
        )
        table.add_row(
            "seconds: HTTP / billing applied / analytics applied",
            f"{t['http_seconds']:.1f} / {t['billing_applied_seconds']:.1f} / "
            f"{t['applied_seconds']:.1f}",
        )
        table.add_row("create ms p50/p95/p99/max", _ms(t["create_ms"]))
        table.add_row("complete ms p50/p95/p99/max", _ms(t["complete_ms"]))
        ev = t["events"]
        counted = "JetStream's count" if ev["source"].startswith("counted") else "event catalog"
        table.add_row(
            f"events per lifecycle, published + consumed ({counted})",
            f"{_n(ev['published_per_lifecycle'])} + {_n(ev['consumed_per_lifecycle'])}",
        )
        table.add_row("events/s achieved (published + consumed)", _n(ev["per_s"], 0))
        for name, share in (t.get("share_of_ceilings") or {}).items():
            table.add_row(f"  share of ceiling: {name}", f"{share * 100:.2f} %")
        console.print(table)

        cpu = Table(title="CPU per lifecycle (phase 1) and peak memory", title_justify="left")
        cpu.add_column("process")
        cpu.add_column("CPU ms / lifecycle", justify="right")
        cpu.add_column("peak RSS MB", justify="right")
        rss = doc.get("peak_rss_mb") or {}
        for name, ms in t["cpu_ms_per_lifecycle"].items():
            cpu.add_row(name, _n(ms), _n(rss.get(name), 0))
        cpu.add_row("[bold]system total[/]", f"[bold]{_n(t['cpu_ms_system_total'])}[/]", "")
        shared = t.get("shared_cpu_ms_per_lifecycle") or {}
        for name, ms in shared.items():
            cpu.add_row(name, _n(ms), "")
        if shared:
            everything = t["cpu_ms_system_total"] + sum(shared.values())
            cpu.add_row("system total with the shared servers", _n(everything), "")
        cpu.add_row("load generator (this benchmark)", _n(t["cpu_ms_bench"]), "")
        console.print(cpu)

    if doc.get("lag"):
        lag = Table(
            title="Lag, open loop: completion answered -> billing's reward on the broker (ms)",
            title_justify="left",
        )
        columns = (
            "offered/s",
            "launched",
            "HTTP/s",
            "lag p50",
            "p95",
            "p99",
            "max",
            "p50 first->last quarter",
            "lifecycle p50/p99",
            "drained after s",
            "kept up",
        )
        for column in columns:
            lag.add_column(column, justify="right")
        for r in doc["lag"]:
            p = r["lag_ms"]
            lag.add_row(
                _n(r["offered_per_s"], 0), str(r["launched"]), _n(r["http_lifecycles_per_s"]),
                _n(p["p50"], 0), _n(p["p95"], 0), _n(p["p99"], 0), _n(p["max"], 0),
                f"{_n(r['lag_p50_first_quarter_ms'], 0)} -> {_n(r['lag_p50_last_quarter_ms'], 0)}",
                f"{_n(r['lifecycle_ms']['p50'], 0)} / {_n(r['lifecycle_ms']['p99'], 0)}",
                _n(r["drained_after_s"]), "[green]yes[/]" if r["kept_up"] else "[red]no[/]",
            )  # fmt: skip
        console.print(lag)
        dash = Table(
            title="Dashboard APIs during the open-loop phases (as admin)", title_justify="left"
        )
        dash.add_column("GET /api/dashboard")
        dash.add_column("requests", justify="right")
        dash.add_column("ms p50/p95/p99/max", justify="right")
        for service, p in doc["dashboards"].items():
            dash.add_row(service, str(p["count"]) if p else "0", _ms(p))
        console.print(dash)

    s = doc.get("shuffle")
    if s:
        sh = Table(
            title=f"Shuffle of {s['tasks']:,} seeded open tasks, {s['workers']:,} workers",
            title_justify="left",
        )
        sh.add_column("from the button to")
        sh.add_column("seconds", justify="right")
        sh.add_column("reassignments/s", justify="right")
        sh.add_column("events consumed/s", justify="right")
        sh.add_row("HTTP answer", _n(s["http_seconds"], 2), "", "")
        for who in ("billing", "analytics"):
            sh.add_row(
                f"{who} applied every reassignment",
                _n(s[f"{who}_seconds"]),
                _n(s[f"{who}_reassignments_per_s"], 0),
                _n(s.get(f"{who}_events_per_s"), 0),
            )
        console.print(sh)
        rss = ", ".join(f"{k} {v:.0f}" for k, v in s["peak_rss_mb"].items())
        console.print(f"peak RSS during the shuffle (MB): {rss}", highlight=False)

    c = doc.get("ceilings")
    if c:
        console.print(
            f"ceilings, same run: JetStream {c['jetstream_publishes_per_s']:,} publishes/s, "
            f"{c['jetstream_publish_consume_per_s']:,} published+consumed messages/s; "
            f"SQLite {c['sqlite_commits_per_s']:,} commits/s",
            highlight=False,
        )

    failed = [ch for ch in doc["checks"] if not ch["ok"]]
    for ch in doc["checks"]:
        mark = "[green]✓[/]" if ch["ok"] else "[bold red]✗[/]"
        console.print(f"{mark} {ch['name']}: {ch['detail']}", highlight=False)
    if doc.get("workdir"):
        console.print(f"data and the services' output: {doc['workdir']}", highlight=False)
    if doc.get("error"):
        console.print(Panel(doc["error"], title="the run stopped", style="bold red"))
    elif failed:
        console.print(
            Panel(
                "\n".join(f"{ch['name']}: {ch['detail']}" for ch in failed),
                title="THE MONEY DOES NOT ADD UP",
                style="bold red",
            )
        )

"""`costsim budget`: parse flags, call :func:`costsim.budget.budget`, render. Nothing else."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import CostsimError
from .common import (OutOpt, PolicyOpt, PricesOpt, ReportFormatOpt, WorkloadOpt, emit,
                     guard_files, handle_errors, warn)


class _LazyProgress:
    """A Rich progress bar on stderr, shown only on a terminal and only once the run has taken
    about a second (short runs stay silent)."""

    def __init__(self, total: int, label: str, delay: float = 1.0):
        self.total, self.label, self.delay = total, label, delay
        self.done = 0
        self.t0 = time.monotonic()
        self.bar = None
        self.task = None
        self.enabled = sys.stderr.isatty()

    def __call__(self, n: int) -> None:
        self.done += n
        self.total = max(self.total, self.done)     # a --budget run adds a second stage
        if not self.enabled:
            return
        if self.bar is None:
            if time.monotonic() - self.t0 < self.delay or self.done >= self.total:
                return
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeRemainingColumn)

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                MofNCompleteColumn(), TimeRemainingColumn(),
                                console=Console(stderr=True), transient=True)
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=self.total)
        self.bar.update(self.task, completed=self.done, total=self.total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _money(x, digits=2):
    from ..render import money

    return money(x, digits)


def _histogram_lines(result, width: int = 40) -> list[str]:
    """Text bars for the monthly-total histogram (counts come from the API)."""
    edges, counts = result.histogram["edges"], result.histogram["counts"]
    if not counts:
        return []
    top = max(counts) or 1
    eighths = " ▏▎▍▌▋▊▉"
    marks = {"P50": result.p50, "P90": result.p90, "P99": result.p99}
    if result.budget_usd is not None:
        marks["budget"] = result.budget_usd
    lines = []
    labels = [f"{_money(lo, 0)} – {_money(hi, 0)}" for lo, hi in zip(edges[:-1], edges[1:])]
    lw = max(len(s) for s in labels)
    for i, (label, c) in enumerate(zip(labels, counts)):
        units = round(c / top * width * 8)
        bar = "█" * (units // 8) + (eighths[units % 8] if units % 8 else "")
        lo, hi = edges[i], edges[i + 1]
        last = i == len(counts) - 1
        here = [k for k, v in marks.items() if lo <= v < hi or (last and v == hi)]
        tail = f"  ← {', '.join(here)}" if here else ""
        lines.append(f"{label:>{lw}} │{bar:<{width}}│ {c:>6,}{tail}")
    return lines


def render_budget(result, fmt: str) -> str:
    from ..render import pct, render_rich, rich_table, to_json, to_markdown

    if fmt == "json":
        return to_json(result.to_dict())
    conf = pct(result.confidence, 0)
    low = f"P{result.low_percentile:g}"
    rows = [
        ["strategy", f"{result.strategy} ({result.strategy_chosen_by})"],
        ["tasks per month", f"{result.tasks:,}"],
        ["spend per task", _money(result.spend_per_task, 4)],
        ["expected monthly spend", _money(result.expected)],
        ["P50", _money(result.p50)],
        ["P90", _money(result.p90)],
        ["P99", _money(result.p99)],
        [f"spend at {conf} confidence", _money(result.at_confidence)],
        ["expected completed tasks", f"{result.completed_expected:,.1f}"],
        [f"completed tasks, {low}", f"{result.completed_low:,}"],
    ]
    if result.budget_usd is not None:
        covered = "unlimited" if result.budget_tasks is None else f"{result.budget_tasks:,}"
        rows.append([f"tasks {_money(result.budget_usd)} covers at {conf}", covered])
    prov_headers = ["provider", "expected", f"credits to buy ({conf})"]
    prov_rows = [[p.provider, _money(p.expected), _money(p.credits)]
                 for p in result.per_provider]
    if fmt == "markdown":
        out = [f"**{result.workload_name}** workload, prices as of {result.prices_as_of}; "
               f"{result.months:,} simulated months, seed {result.seed}\n",
               to_markdown(["", "value"], rows), "", to_markdown(prov_headers, prov_rows)]
        out += ["", "Notes:", ""] + [f"- {n}" for n in result.notes]
        return "\n".join(out) + "\n"
    from rich.text import Text

    title = (f"{result.workload_name}: monthly budget (prices as of {result.prices_as_of}, "
             f"{result.months:,} simulated months, seed {result.seed})")
    items = [rich_table(title, ["", "value"], rows, right=[1]),
             rich_table("per provider", prov_headers, prov_rows, right=[1, 2]),
             Text(f"Monthly spend over {result.months:,} simulated months:"),
             Text("\n".join(_histogram_lines(result)))]
    items += [Text(f"note: {n}", style="dim") for n in result.notes]
    return render_rich(items)


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def budget(
        prices: PricesOpt = None,
        workload: WorkloadOpt = None,
        policy: PolicyOpt = None,
        strategy: Annotated[Optional[str], typer.Option(
            "--strategy", "-s", help="A policy name or single:MODEL. Default: the routed "
            "policy with the lowest cost per completed task.")] = None,
        tasks: Annotated[Optional[int], typer.Option(
            help="Exactly this many tasks every month. Default: the workload's tasks_per_month "
                 "(which may vary from month to month).")] = None,
        confidence: Annotated[float, typer.Option(
            help="Confidence for credits to buy, the low completed-task percentile, --budget "
                 "and --fail-above (0-1).")] = 0.9,
        budget_usd: Annotated[Optional[float], typer.Option(
            "--budget", metavar="USD",
            help="USD: report how many tasks this covers at the confidence.")] = None,
        fail_above: Annotated[Optional[float], typer.Option(
            "--fail-above", metavar="USD", help="USD: exit 1 when the monthly spend at the confidence exceeds "
            "it (a CI gate).")] = None,
        seed: Annotated[int, typer.Option(help="Monte Carlo seed.")] = 0,
        months: Annotated[Optional[int], typer.Option(
            help="Simulated months (more: steadier percentiles, slower). Default: 10,000 "
                 "(fewer when tasks differ and months are large).")] = None,
        plot: Annotated[Optional[Path], typer.Option(
            "--plot", metavar="FILE", help="Also save a histogram chart to FILE (.png, .svg "
            "or .pdf; needs matplotlib: pip install 'costsim[plot]').", dir_okay=False)] = None,
        format: ReportFormatOpt = "table",
        out: OutOpt = None,
    ):
        """Monthly budget: expected and P50/P90/P99 spend, credits per provider, tasks a budget covers.

        Percentiles: Monte Carlo over --months months on the ladders `compare` uses. Expected: exact.
        """
        from .. import paths
        from ..budget import budget as run

        # everything that can be refused is refused before the simulation runs
        if fail_above is not None and not fail_above >= 0:
            raise CostsimError(f"must be a non-negative amount, got {fail_above}",
                               path="--fail-above")
        prices = paths.resolve_prices_path(prices)
        workload = paths.resolve_workload_path(workload)
        given = bool(policy)
        policy = paths.resolve_policy_paths(policy or ())
        guard_files(reads={"--prices": prices, "--workload": workload, "--policy": policy},
                    writes={"--out": out, "--plot": plot}, images=["--plot"])
        n_tasks = tasks
        prog = _LazyProgress(total=1, label="simulating")
        try:
            if prog.enabled:
                # size the bar once the task count is known (the workload default)
                from ..api import load_inputs

                _, _, wl, _, _ = load_inputs(prices, policy if given else None, workload)
                from ..budget import months_for

                n = n_tasks or round(wl.monthly_tasks)
                prog.total = n * months_for(n, months, wl.variation is not None)
            # no --policy: the bundled ones, those that cannot run with the table left out
            result = run(prices, policy if given else None, workload, strategy=strategy,
                         tasks=tasks,
                         confidence=confidence, budget_usd=budget_usd, seed=seed,
                         months=months, progress=prog)
        finally:
            prog.close()
        for w in result.warnings:
            warn(w)
        emit(render_budget(result, getattr(format, "value", format)), out)
        if plot is not None:
            result.plot(plot)
            typer.echo(f"wrote {plot}", err=True)
        if fail_above is not None and result.exceeds(fail_above):
            typer.echo(f"budget gate: monthly spend at {result.confidence:g} confidence is "
                       f"${result.at_confidence:,.2f}, above --fail-above "
                       f"${fail_above:,.2f}", err=True)
            raise typer.Exit(1)

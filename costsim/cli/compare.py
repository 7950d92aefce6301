"""`costsim compare`: parse flags, call :func:`costsim.api.compare`, render. Nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import (FormatOpt, OutOpt, PolicyOpt, PricesOpt, WorkloadOpt, emit, handle_errors,
                     warn)


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def compare(
        prices: PricesOpt = None,
        workload: WorkloadOpt = None,
        policy: PolicyOpt = None,
        model: Annotated[Optional[list[str]], typer.Option(
            "--model", "-m", help="Also compare single:MODEL (repeatable).")] = None,
        pareto: Annotated[Optional[list[float]], typer.Option(
            "--pareto", metavar="SCORE",
            help="Also compare pareto:SCORE, a per-request router that sends every attempt to the "
                 "cheapest model with coding_score >= SCORE (repeatable).")] = None,
        engine: Annotated[str, typer.Option(
            help="analytic (exact expectations), montecarlo (adds percentiles and standard "
                 "errors) or replay (the recorded outcomes of --log).")] = "analytic",
        log: Annotated[Optional[Path], typer.Option(
            "--log", help="Runs log whose recorded outcomes --engine replay replays (CSV, JSON "
                          "Lines or Parquet).", dir_okay=False)] = None,
        bootstrap: Annotated[int, typer.Option(
            help="Replay: bootstrap resamples of the tasks for the 95% intervals (0: none).",
            min=0)] = 1000,
        samples: Annotated[int, typer.Option(help="Monte Carlo samples (tasks) per strategy.",
                                             min=1)] = 400_000,
        seed: Annotated[int, typer.Option(help="Monte Carlo (and replay bootstrap) seed.")] = 0,
        breakdown: Annotated[bool, typer.Option(
            "--breakdown", help="Add spend per phase and per model for every strategy.")] = False,
        format: FormatOpt = "table",
        out: OutOpt = None,
    ):
        """Compare single-model and routed strategies by cost per completed task.

        Strategies: every routed --policy, plus single:M for every model those policies name and
        every --model, plus pareto:SCORE for every --pareto. Sorted by cost per completed task; savings are against the cheapest single
        model that completes at least as often; * marks Pareto-efficient strategies.
        """
        from ..api import compare as run
        from ..render import render_compare

        result = run(prices, policy or None, workload, model or (), engine=engine, samples=samples,
                     seed=seed, pareto=pareto or (), log=log, bootstrap=bootstrap)
        for w in result.warnings:
            warn(w)
        emit(render_compare(result, getattr(format, "value", format), breakdown), out)

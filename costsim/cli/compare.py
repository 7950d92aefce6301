"""`costsim compare`: parse flags, call :func:`costsim.api.compare`, render. Nothing else."""

from __future__ import annotations

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
            help="analytic (exact expectations) or montecarlo (adds percentiles and standard "
                 "errors).")] = "analytic",
        samples: Annotated[int, typer.Option(help="Monte Carlo samples (tasks) per strategy.",
                                             min=1)] = 400_000,
        seed: Annotated[int, typer.Option(help="Monte Carlo seed.")] = 0,
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
                     seed=seed, pareto=pareto or ())
        for w in result.warnings:
            warn(w)
        emit(render_compare(result, getattr(format, "value", format), breakdown), out)

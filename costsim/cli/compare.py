"""`costsim compare`: parse flags, call :func:`costsim.api.compare`, render. Nothing else."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import (FormatOpt, OutOpt, PolicyOpt, PricesOpt, WideOpt, WorkloadOpt, emit,
                     guard_files, handle_errors, warn)


class Engine(str, Enum):
    analytic = "analytic"
    montecarlo = "montecarlo"
    replay = "replay"


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def compare(
        prices: PricesOpt = None,
        workload: WorkloadOpt = None,
        policy: PolicyOpt = None,
        model: Annotated[Optional[list[str]], typer.Option(
            "--model", "-m", metavar="MODEL",
            help="Also compare single:MODEL, one model for every attempt (repeatable).")] = None,
        pareto: Annotated[Optional[list[float]], typer.Option(
            "--pareto", metavar="SCORE",
            help="Also compare pareto:SCORE, a per-request router that sends every attempt to the "
                 "cheapest model with coding_score >= SCORE (repeatable).")] = None,
        baseline: Annotated[Optional[str], typer.Option(
            "--baseline", metavar="STRATEGY",
            help="What savings are measured against: a policy name, single:MODEL or "
                 "pareto:SCORE (added if not compared already). Default: the single model of "
                 "the highest tier the policies name, e.g. single:claude-opus-5.")] = None,
        engine: Annotated[Engine, typer.Option(
            help="analytic: exact expectations; montecarlo: sampled, adds standard errors and "
                 "percentiles; replay: the recorded outcomes of --log.")] = Engine.analytic,
        log: Annotated[Optional[Path], typer.Option(
            "--log", metavar="LOG", dir_okay=False,
            help="Runs log (CSV, JSON Lines or Parquet) whose recorded outcomes --engine replay "
                 "evaluates every strategy on.")] = None,
        bootstrap: Annotated[int, typer.Option(
            metavar="N", help="Replay: bootstrap resamples of the log's tasks for the 95% "
                              "intervals (0: none).")] = 1000,
        samples: Annotated[int, typer.Option(
            metavar="N", help="Monte Carlo samples (tasks) per strategy, at least 1.")] = 400_000,
        seed: Annotated[int, typer.Option(
            metavar="N", help="Monte Carlo seed (replay: the bootstrap's).")] = 0,
        breakdown: Annotated[bool, typer.Option(
            "--breakdown", help="Add spend per phase and per model for every strategy.")] = False,
        wide: WideOpt = False,
        format: FormatOpt = "table",
        out: OutOpt = None,
    ):
        """Compare single-model and routed strategies by cost per completed task.

        Strategies: every --policy, plus single:MODEL for every model those policies name and
        every --model, plus pareto:SCORE for every --pareto, sorted by cost per completed task.
        Beside it: spend per month at the workload's tasks_per_month, completion and defect
        rates, and savings per completed task and per month against the baseline (--baseline).
        The table keeps to the terminal width; --wide shows every column.

        --engine replay --log LOG evaluates every strategy on the outcomes LOG recorded (adding
        single:MODEL for every model of the log), with coverage and 95% bootstrap intervals.
        """
        from .. import paths
        from ..api import compare as run
        from ..render import render_compare

        prices_path = paths.resolve_prices_path(prices)
        workload_path = paths.resolve_workload_path(workload)
        policy_paths = paths.resolve_policy_paths(policy or ())
        guard_files(reads={"--prices": prices_path, "--workload": workload_path,
                           "--policy": policy_paths, "--log": log}, writes={"--out": out})
        # replay takes max_attempts from the log unless a workload is named
        wl = workload_path if workload is not None or log is None else None
        # no --policy: the bundled ones, those that cannot run with the table left out
        result = run(prices_path, policy_paths if policy else None, wl, model or (),
                     engine=getattr(engine, "value", engine), samples=samples, seed=seed,
                     pareto=pareto or (), baseline=baseline, log=log, bootstrap=bootstrap)
        for w in result.warnings:
            warn(w)
        emit(render_compare(result, getattr(format, "value", format), breakdown, wide), out)

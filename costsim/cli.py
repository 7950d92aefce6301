"""The `costsim` command. Parses flags, calls the API, renders; nothing else."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Optional

import typer

from . import __version__
from .cli_common import (FormatOpt, OutOpt, PolicyOpt, PricesOpt, WorkloadOpt, emit,
                         handle_errors, warn)

app = typer.Typer(
    name="costsim",
    help="Cost estimator and routing-policy simulator for AI coding agents: what one completed "
         "task costs with each single model and with each routing policy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool):
    if value:
        typer.echo(f"costsim {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Show the version and exit.")] = False):
    """Cost estimator and routing-policy simulator for AI coding agents."""


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
    from .api import compare as run
    from .render import render_compare

    result = run(prices, policy or None, workload, model or (), engine=engine, samples=samples,
                 seed=seed, pareto=pareto or ())
    for w in result.warnings:
        warn(w)
    emit(render_compare(result, getattr(format, "value", format), breakdown), out)


def _register_subcommands() -> None:
    """Commands that live in their own modules (each imports its heavy parts lazily)."""
    from . import cli_budget, cli_calibrate, cli_optimize
    from .cli_pricetable import app as price_table_app

    app.add_typer(price_table_app, name="price-table")
    for mod in (cli_budget, cli_calibrate, cli_optimize):
        mod.register(app)


_register_subcommands()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: never show a traceback for a user's mistake."""
    try:
        app(args=argv, prog_name="costsim")
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except SystemExit:
        raise
    except Exception as exc:  # a bug: say so in one line unless debugging
        if os.environ.get("COSTSIM_DEBUG"):
            raise
        typer.echo(f"costsim: internal error: {type(exc).__name__}: {exc} "
                   f"(set COSTSIM_DEBUG=1 for the traceback; please report it)", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()

"""`costsim calibrate LOG`: parse flags, call costsim.calibrate.calibrate, print its rendering
(costsim/calibrate/render.py). Nothing else.

Every table fits 80 columns: compact borders, text that wraps (model names, routes) and numbers
that never do; details that need more room are behind ``--wide``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import CostsimError
from .common import (OutOpt, PricesOpt, ReportFormatOpt, emit, guard_files, handle_errors,
                     warn)

# Keep in step with costsim.calibrate's DEFAULT_* (not imported: pandas stays out of start-up).
_MIN_SAMPLES, _RAISE_BELOW, _LOWER_MAX_GAP, _REVIEW_BELOW = 30, 0.6, 0.05, 0.1


# calibrate's own --policy and --workload: what they mean here and their real defaults.
LogPolicyOpt = Annotated[Optional[list[Path]], typer.Option(
    "--policy", "-p", metavar="FILE", help="The routing policy the log was made with: a YAML "
    "file or a bundled name such as cheapest-routing. Default: read back from the log (each "
    "run's own).")]
BaseWorkloadOpt = Annotated[Optional[Path], typer.Option(
    "--workload", "-w", metavar="FILE", help="Where what the log cannot show comes from: a "
    "workload YAML file or a bundled name. Default: medium-team.", dir_okay=False)]


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def calibrate(
        log: Annotated[Path, typer.Argument(
            metavar="LOG",
            help="Runs log: a .csv, .jsonl/.ndjson or .parquet file (optionally .gz, .bz2, "
                 ".xz, .zip or .zst), a directory of them or a glob pattern; one row per call "
                 "or per attempt (docs/calibrate.md).")],
        prices: PricesOpt = None,
        policy: LogPolicyOpt = None,
        workload: BaseWorkloadOpt = None,
        write_workload: Annotated[Optional[Path], typer.Option(
            "--write-workload", metavar="FILE", help="Write the workload fitted from the log "
            "to FILE (atomically), for `costsim compare --workload FILE`.",
            dir_okay=False)] = None,
        write_policy: Annotated[Optional[Path], typer.Option(
            "--write-policy", metavar="FILE", help="Write the routing policy the log was made "
            "with (inferred, or --policy) to FILE, for `costsim compare --policy FILE`.",
            dir_okay=False)] = None,
        write_prices: Annotated[Optional[Path], typer.Option(
            "--write-prices", metavar="FILE", help="Write the price table the fitted workload "
            "needs to FILE (atomically): --prices plus effective prices for the models a "
            "log shows by cost only (no tokens), for `costsim compare --prices FILE`.",
            dir_okay=False)] = None,
        min_samples: Annotated[int, typer.Option(
            metavar="N", help="Fewest first attempts (or reviewed tasks) a rule needs before "
            "it recommends.", min=1)] = _MIN_SAMPLES,
        raise_below: Annotated[float, typer.Option(
            metavar="P", help="Consider raising a route whose first-attempt success is below "
            "P.", min=0.0, max=1.0)] = _RAISE_BELOW,
        lower_max_gap: Annotated[float, typer.Option(
            metavar="P", help="Consider lowering a route when a cheaper model's first-attempt "
            "success on comparable tasks is at most P lower.",
            min=0.0, max=1.0)] = _LOWER_MAX_GAP,
        review_changes_below: Annotated[float, typer.Option(
            metavar="P", help="Consider lowering a review route whose reviews led to reviewer "
            "changes in fewer than P of the tasks.", min=0.0, max=1.0)] = _REVIEW_BELOW,
        wide: Annotated[bool, typer.Option(
            "--wide", help="Also show the per-model tokens and the routes tables (wider than "
            "80 columns).")] = False,
        format: ReportFormatOpt = "table",
        out: OutOpt = None,
        source: Annotated[Optional[str], typer.Option(
            "--source", metavar="SOURCE", help="LOG is not a runs log but what an agent "
            "wrote: import it first (claude-code, codex, otlp, litellm, openhands, "
            "aider-bench; see `costsim log import`).")] = None,
        outcomes: Annotated[Optional[Path], typer.Option(
            "--outcomes", metavar="FILE", help="With --source: task outcomes to join (CSV or "
            "JSON Lines: task_id, success, reviewer_changes).", dir_okay=False)] = None,
        task_by: Annotated[str, typer.Option(
            "--task-by", metavar="KEY",
            help="With --source: session, branch or tag:NAME.")] = "session",
        engine: Annotated[str, typer.Option(
            "--engine", metavar="ENGINE", help="Where the measurement SQL runs: duckdb "
            "(default, in process) or ibis:URL through Ibis (ibis:pyspark for local Spark, "
            "ibis:duckdb://, any ibis.connect URL; pip install 'costsim[ibis]' or "
            "'costsim[spark]').")] = "duckdb",
        phase_by: Annotated[str, typer.Option(
            "--phase-by", metavar="KEY", help="With --source: agent or tag:NAME.")] = "agent",
    ):
        """Learn a workload from a runs log, check it reproduces the log, recommend changes.

        Fits everything the log shows (tokens, success per model and attempt, signals,
        defects, retries); what it cannot show comes from --workload (default: the bundled
        medium-team) and is named in the report and in the written file. The fit check
        evaluates the fitted workload under the log's own policy (--policy, else inferred
        from the log) with the same engine as `costsim compare`. Recommendations are
        projected by that engine and kept only when they pay.
        """
        from .. import paths
        from ..calibrate import calibrate as run

        from ..logs.runslog import find_files

        logs = [log] if source is not None else [Path(f) for f in find_files(str(log))]
        guard_files(reads={"LOG": logs,
                           "--prices": paths.resolve_prices_path(prices),
                           "--policy": [paths.resolve_policy_path(p) for p in policy or ()],
                           "--workload": workload and paths.resolve_workload_path(workload),
                           "--outcomes": outcomes},
                    writes={"--out": out, "--write-workload": write_workload,
                            "--write-policy": write_policy, "--write-prices": write_prices})

        from ..logs.engines import check_engine

        check_engine(engine)

        def go(path):
            return run(path, prices=prices, policies=policy or None, workload=workload,
                       min_samples=min_samples, raise_below=raise_below,
                       lower_max_gap=lower_max_gap, review_changes_below=review_changes_below,
                       engine=engine)

        if source is None:
            if outcomes is not None:
                raise CostsimError("--outcomes needs --source (an imported runs log already "
                                   "carries its outcomes)")
            result = go(log)
        else:
            from ..logs.importer import imported_log
            from .log import render_summary

            with imported_log(source, [log], outcomes=outcomes, task_by=task_by,
                              phase_by=phase_by, prices=paths.resolve_prices_path(prices)) \
                    as (path, summary):
                typer.echo(render_summary(summary, head=f"imported {log}"), err=True)
                result = go(path)
                result.log = f"{log} ({source})"
        for w in result.warnings:
            warn(w)
        from ..calibrate.render import render_calibration

        text = render_calibration(result, getattr(format, "value", format), wide=wide)
        # Every file's text first: one that cannot be written (no policy for a single-model
        # log, no effective prices for a log with tokens) fails before any is written.
        files = [(p, make()) for p, make in ((write_workload, result.workload_yaml),
                                             (write_policy, result.policy_text),
                                             (write_prices, result.prices_text))
                 if p is not None]
        from ..fsutil import atomic_write

        for p, body in files:
            atomic_write(p, body)
            typer.echo(f"wrote {p}", err=True)
        emit(text, out)

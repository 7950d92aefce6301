"""`costsim calibrate LOG`: parse flags, call costsim.calibrate.calibrate, render. Nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import (OutOpt, PolicyOpt, PricesOpt, ReportFormatOpt, WorkloadOpt, emit,
                     guard_files, handle_errors, warn)

# Keep in step with costsim.calibrate's DEFAULT_* (not imported: pandas stays out of start-up).
_MIN_SAMPLES, _RAISE_BELOW, _LOWER_MAX_GAP, _REVIEW_BELOW = 30, 0.6, 0.05, 0.1


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def calibrate(
        log: Annotated[Path, typer.Argument(
            help="Runs log: .csv, .jsonl/.ndjson or .parquet (optionally .gz), one row per "
                 "attempt (columns: see the README).")],
        prices: PricesOpt = None,
        policy: PolicyOpt = None,
        workload: WorkloadOpt = None,
        write_workload: Annotated[Optional[Path], typer.Option(
            "--write-workload", help="Write the workload fitted from the log to FILE "
            "(atomically), for `costsim compare --workload FILE`.", dir_okay=False)] = None,
        min_samples: Annotated[int, typer.Option(
            help="Fewest first attempts (or reviewed tasks) a rule needs before it "
                 "recommends.", min=1)] = _MIN_SAMPLES,
        raise_below: Annotated[float, typer.Option(
            help="Raise a route whose first-attempt success is below this.",
            min=0.0, max=1.0)] = _RAISE_BELOW,
        lower_max_gap: Annotated[float, typer.Option(
            help="Lower a route when a cheaper model's first-attempt success is at most this "
                 "much lower (and the 95% intervals overlap).", min=0.0, max=1.0)] = _LOWER_MAX_GAP,
        review_changes_below: Annotated[float, typer.Option(
            help="Lower a review route whose reviews led to reviewer changes in fewer than "
                 "this share of tasks.", min=0.0, max=1.0)] = _REVIEW_BELOW,
        format: ReportFormatOpt = "table",
        out: OutOpt = None,
    ):
        """Measure routing success from a runs log and recommend raising or lowering tiers.

        Reports first-attempt and retry success per (task type, phase, model); completion,
        cost per completed task, retries and reviewer changes per (task type, route); overall
        and per ISO week. --policy names the policy the log was produced with (default: the
        routes seen in the log). Projections come from the analytic engine on the workload
        fitted from the log.
        """
        from .. import paths
        from ..calibrate import calibrate as run

        guard_files(reads={"LOG": log, "--prices": paths.resolve_prices_path(prices),
                           "--policy": [paths.resolve_policy_path(p) for p in policy or ()],
                           "--workload": workload and paths.resolve_workload_path(workload)},
                    writes={"--out": out, "--write-workload": write_workload})
        result = run(log, prices=prices, policies=policy or None, workload=workload,
                     min_samples=min_samples, raise_below=raise_below,
                     lower_max_gap=lower_max_gap, review_changes_below=review_changes_below)
        for w in result.warnings:
            warn(w)
        if write_workload is not None:
            result.write_workload(write_workload)
            typer.echo(f"wrote {write_workload}", err=True)
        emit(render_calibration(result, getattr(format, "value", format)), out)


# --- rendering (formatting only) ------------------------------------------------------------

def _pct(x, digits=1):
    from ..render import pct

    return pct(x, digits) if x is not None else "-"


def _ci(ci):
    if not ci:
        return "-"
    return f"{100 * ci[0]:.0f}-{100 * ci[1]:.0f}%"


def _tok(x):
    return f"{x:,.0f}"


OVERALL_COLUMNS = ["scope", "tasks", "completion", "cost/completed", "spend/task",
                   "retries/task", "reviewer changes"]
MODEL_COLUMNS = ["task type", "phase", "model", "attempts", "1st-try success", "95% CI",
                 "retry success", "95% CI ", "in tok", "cached tok", "out tok", "spend"]
ROUTE_COLUMNS = ["task type", "route", "tasks", "completion", "cost/completed", "spend/task",
                 "retries/task", "reviewer changes"]
FIT_COLUMNS = ["scope", "completion (log)", "completion (engine)", "cost/completed (log)",
               "cost/completed (engine)"]
REC_COLUMNS = ["action", "task type", "phase", "from", "to", "evidence",
               "cost/completed before", "after", "change"]


def _summary_row(label, r):
    from ..render import money

    return [label, f"{r['tasks']:,}", _pct(r["completion_rate"]),
            money(r["cost_per_completed_task"]), money(r["spend_per_task"]),
            f"{r['retries_per_task']:.2f}", _pct(r["reviewer_change_rate"])]


def _rows(result):
    from ..render import money

    overall = [_summary_row("all tasks", result.overall)]
    overall += [_summary_row(r["task_type"], r) for r in result.by_task_type]
    weekly = [_summary_row(r["week"], r) for r in result.weekly]
    models = [[r["task_type"], r["phase"], r["model"], f"{r['attempts']:,}",
               _pct(r["first_attempt_success"]), _ci(r["first_attempt_ci95"]),
               _pct(r["retry_success"]), _ci(r["retry_ci95"]), _tok(r["mean_input_tokens"]),
               _tok(r["mean_cached_input_tokens"]), _tok(r["mean_output_tokens"]),
               money(r["spend"], 2)] for r in result.by_model]
    routes = [[r["task_type"], r["route"]] + _summary_row("", r)[1:] for r in result.by_route]
    recs = []
    for r in result.recommendations:
        p = r.get("projected") or {}
        recs.append([r["action"], r["task_type"], r["phase"], r["from_model"], r["to_model"],
                     r["reason"], money(p.get("cost_per_completed_task_before")),
                     money(p.get("cost_per_completed_task_after")),
                     _pct(p.get("delta_pct")) if p.get("delta_pct") is not None else "-"])
    fit = [[r["scope"], _pct(r["measured_completion_rate"]), _pct(r["engine_completion_rate"]),
            money(r["measured_cost_per_completed_task"]),
            money(r["engine_cost_per_completed_task"])] for r in result.fit]
    return overall, weekly, models, routes, recs, fit


def render_calibration(result, fmt: str) -> str:
    from ..render import render_rich, rich_table, to_json, to_markdown

    if fmt == "json":
        return to_json(result.to_dict())
    overall, weekly, models, routes, recs, fit = _rows(result)
    head = (f"{result.log}: {result.rows:,} attempts, {result.tasks:,} tasks; prices as of "
            f"{result.prices_as_of}; baseline: {result.baseline}")
    notes = list(result.notes)
    if fmt == "markdown":
        out = [f"**{head}**\n", "#### Overall\n", to_markdown(OVERALL_COLUMNS, overall)]
        if weekly:
            out += ["\n#### Per week\n", to_markdown(OVERALL_COLUMNS, weekly)]
        out += ["\n#### Per task type, phase and model\n", to_markdown(MODEL_COLUMNS, models),
                "\n#### Per task type and route\n", to_markdown(ROUTE_COLUMNS, routes),
                "\n#### Recommendations\n",
                to_markdown(REC_COLUMNS, recs) if recs else "None.\n"]
        if fit:
            out += ["\n#### Fitted workload vs the log (current routes)\n",
                    to_markdown(FIT_COLUMNS, fit)]
        if notes:
            out += ["\n" + "\n".join(f"- {n}" for n in notes) + "\n"]
        return "\n".join(out)
    items = [head, rich_table("overall", OVERALL_COLUMNS, overall, right=range(1, 7))]
    if weekly:
        items.append(rich_table("per ISO week (by each task's first timestamp)",
                                OVERALL_COLUMNS, weekly, right=range(1, 7)))
    items += [rich_table("per task type, phase and model", MODEL_COLUMNS, models,
                         right=range(3, 12)),
              rich_table("per task type and route (the models a task used)", ROUTE_COLUMNS,
                         routes, right=range(2, 8))]
    if recs:
        items.append(rich_table("recommendations (projected by the analytic engine on the "
                                "fitted workload)", REC_COLUMNS, recs, right=range(6, 9)))
    else:
        items.append("No recommendations: no route crosses a threshold with enough samples.")
    if fit:
        items.append(rich_table("fitted workload vs the log, current routes (the engine resends "
                                "context on retries)", FIT_COLUMNS, fit,
                                right=range(1, 5)))
    items += [f"note: {n}" for n in notes]
    return render_rich(items)

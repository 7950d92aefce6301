"""`costsim log import`: parse flags, call costsim.logs.importer.import_logs, render the summary."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..logs.sources import SOURCES
from .common import TYPER_SETTINGS, handle_errors

app = typer.Typer(
    help="Import what coding agents already write (Claude Code, Codex, OpenTelemetry spans, "
         "LiteLLM spend logs, OpenHands and Aider benchmark results) as a runs log for "
         "`costsim calibrate`.",
    **TYPER_SETTINGS,
)

LogSource = Enum("LogSource", {name.replace("-", "_"): name for name in SOURCES}, type=str)


class SummaryFormat(str, Enum):
    text = "text"
    json = "json"


IMPORT_HELP = (
    "Import agent logs as a runs log for calibrate.\n\n"
    "One row per LLM call where the source logs calls (call column), one per attempt for "
    "benchmark results (calls column). Input tokens include cached ones (cache reads and "
    "writes are added where the source counts them apart); cost_usd only where the source "
    "states one; duplicates are removed; malformed lines are skipped and counted. The same "
    "input gives the same bytes out. Each source's mapping: docs/logs.md."
)


@app.command("import", help=IMPORT_HELP)
@handle_errors
def import_(
    paths: Annotated[list[Path], typer.Argument(
        help="Log files or folders (walked recursively; .gz files are read too).",
        show_default=False, metavar="PATH")],
    source: Annotated[LogSource, typer.Option(
        "--source", "-s", metavar="SOURCE", help="What wrote the logs: claude-code, codex, "
        "otlp, litellm, openhands or aider-bench.", show_default=False)],
    out: Annotated[Path, typer.Option(
        "--out", "-o", metavar="FILE", help="The runs log to write: .csv, .jsonl or .parquet "
        "(written atomically; never one of the inputs).", dir_okay=False,
        show_default=False)],
    outcomes: Annotated[Optional[Path], typer.Option(
        "--outcomes", metavar="FILE", help="Task outcomes to join (CSV or JSON Lines: task_id, "
        "success, reviewer_changes, optional task_type and signals). Tasks without one keep "
        "an empty success.", dir_okay=False)] = None,
    task_by: Annotated[str, typer.Option(
        "--task-by", metavar="KEY", help="What makes a task: session, branch or tag:NAME (a "
        "tag, attribute or field called NAME). Benchmark sources: the instance.")] = "session",
    phase_by: Annotated[str, typer.Option(
        "--phase-by", metavar="KEY", help="What makes a phase: agent (subagent type or agent "
        "name; the main loop is 'main') or tag:NAME.")] = "agent",
    run: Annotated[Optional[str], typer.Option(
        "--run", metavar="NAME", help="Run name for records whose source names none "
        "(default: the source name).")] = None,
    task_type: Annotated[str, typer.Option(
        "--task-type", metavar="NAME",
        help="Task type for tasks the outcomes file gives none.")] = "default",
    prices: Annotated[Optional[Path], typer.Option(
        "--prices", metavar="FILE", help="Match logged model ids to this price table's "
        "(provider prefixes and date suffixes dropped where that finds the table's id: "
        "claude-sonnet-4-5-20250929 -> claude-sonnet-4-5). Without it, ids are kept as "
        "logged.", dir_okay=False)] = None,
    format: Annotated[SummaryFormat, typer.Option(
        "--format", "-f", help="Summary format (the summary goes to standard output).")] = "text",
):
    from ..logs.importer import import_logs
    from .common import guard_files

    guard_files(reads={"PATH": list(paths), "--outcomes": outcomes, "--prices": prices},
                writes={"--out": out})
    res = import_logs(getattr(source, "value", source), paths, out, outcomes=outcomes,
                      task_by=task_by, phase_by=phase_by, run=run, task_type=task_type,
                      prices=prices)
    if getattr(format, "value", format) == "json":
        from ..render import to_json

        typer.echo(to_json(res.to_dict()), nl=False)
    else:
        typer.echo(render_summary(res))


def render_summary(res, head: str | None = None) -> str:
    unit = "calls" if res.per_call else "attempts"
    lines = [
        f"{head or 'wrote ' + res.out}: {res.rows:,} {unit} of {res.tasks:,} tasks in {res.runs:,} "
        f"run{'s' if res.runs != 1 else ''}, from {res.files:,} "
        f"file{'s' if res.files != 1 else ''} ({res.source})",
        f"tokens: {res.input_tokens:,} input ({res.cached_input_tokens:,} cached), "
        f"{res.output_tokens:,} output",
        "stated cost: " + (f"${res.cost_usd:,.6f} on {res.rows_with_cost:,} rows"
                           if res.rows_with_cost
                           else "none (calibrate prices the rows from the price table)"),
        f"outcomes: {res.tasks_with_outcome:,} tasks with one, {res.tasks_without_outcome:,} "
        f"without (their success is left empty)",
    ]
    # Ids (task ids, model ids) go one to an indented line, as the reasons below: a list of
    # them on one line ran past 80 columns (5 session UUIDs: 230 characters).
    if res.outcomes_unmatched:
        lines.append(f"outcomes for {res.outcomes_unmatched:,} task ids not in the logs, e.g.:")
        lines += [f"  {t}" for t in res.outcomes_unmatched_examples]
    if res.models_matched:
        shown = [f"{k} -> {v}" for k, v in list(res.models_matched.items())[:5]]
        more = len(res.models_matched) - len(shown)
        lines.append("model ids matched to the price table:")
        lines += [f"  {x}" for x in shown] + ([f"  and {more} more"] if more > 0 else [])
    if res.calls_moved:
        lines.append(f"{res.calls_moved:,} calls on a second model inside an attempt: "
                     f"own phase <phase>@<model>")
    if res.duplicates:
        lines.append(f"duplicates removed: {res.duplicates:,}")
    if res.tasks_from_fallback:
        lines.append(f"{res.tasks_from_fallback:,} tasks without a --task-by value: keyed by "
                     f"session (or the source's id)")
    if res.skipped:
        lines.append(f"malformed records skipped: {res.skipped:,}; first:")
        lines += [f"  {r}" for r in res.reasons]
    return "\n".join(lines)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="log")

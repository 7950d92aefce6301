"""Views of result objects: table (Rich), JSON, CSV, Markdown. No arithmetic beyond formatting."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from typing import Any, Sequence

FORMATS = ("table", "json", "csv", "markdown")


def money(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "-"
    if math.isinf(x):
        return "never completes"
    return f"${x:,.{digits}f}"


def pct(x: float | None, digits: int = 1) -> str:
    if x is None:
        return "-"
    return f"{100 * x:.{digits}f}%"


def to_json(data: Any) -> str:
    def default(o):
        if hasattr(o, "isoformat"):
            return o.isoformat()
        raise TypeError(type(o).__name__)

    def clean(o):
        if isinstance(o, float) and (math.isinf(o) or math.isnan(o)):
            return None
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [clean(v) for v in o]
        return o

    return json.dumps(clean(data), indent=2, default=default) + "\n"


def to_csv(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(headers)
    for r in rows:
        w.writerow(["" if v is None else v for v in r])
    return buf.getvalue()


def to_markdown(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def esc(v):
        return str(v).replace("|", "\\|")

    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(esc(v) for v in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def rich_table(title: str | None, headers: Sequence[str], rows: Sequence[Sequence[Any]],
               right: Sequence[int] = (), caption: str | None = None):
    from rich.table import Table

    t = Table(title=title, caption=caption, show_lines=False, header_style="bold")
    for i, h in enumerate(headers):
        t.add_column(h, justify="right" if i in right else "left", no_wrap=(i == 0))
    for r in rows:
        t.add_row(*[str(v) for v in r])
    return t


def render_rich(renderables, width: int | None = None) -> str:
    """Render Rich objects to text at the current terminal width (plain when not a tty), or at
    ``width`` (for output a user asked to be wide: the terminal wraps it, nothing is cut)."""
    from rich.console import Console

    buf = io.StringIO()
    import shutil
    import sys

    tty = sys.stdout.isatty()
    # Off a terminal (pipes, files, tests) there is no width to respect unless COLUMNS says
    # one: never truncate.
    env = os.environ.get("COLUMNS", "")
    if width is None:
        width = (shutil.get_terminal_size((120, 24)).columns if tty
                 else int(env) if env.isdigit() and int(env) > 0 else 240)
    console = Console(file=buf, width=width, force_terminal=tty, color_system="auto" if tty else None,
                      highlight=False, soft_wrap=False)
    for r in renderables:
        console.print(r)
    return buf.getvalue()


# --- compare --------------------------------------------------------------------------------

COMPARE_COLUMNS = ["strategy", "cost/completed", "spend/task", "completion", "defects",
                   "review min", "attempts", "retries", "premium", "savings", "vs", "pareto"]


def _compare_rows(result, human: bool):
    rows = []
    for s in result.strategies:
        if human:
            own = s.savings_vs == s.name       # the reference itself: nothing to save
            rows.append([
                s.name, money(s.cost_per_completed_task), money(s.spend_per_task),
                pct(s.completion_rate, 2), pct(s.defect_rate, 2), f"{s.review_minutes:.1f}",
                f"{s.expected_attempts:.2f}", f"{s.expected_retries:.2f}", pct(s.premium_share, 0),
                "-" if s.savings is None or own else pct(s.savings),
                "-" if own else (s.savings_vs or "-"),
                "*" if s.pareto else ""])
        else:
            rows.append([s.name, s.kind, s.cost_per_completed_task, s.spend_per_task,
                         s.completion_rate, s.defect_rate, s.review_minutes, s.expected_attempts,
                         s.expected_retries, s.premium_share, s.savings, s.savings_vs,
                         s.pareto])
    return rows


def _breakdown_rows(result):
    phase_rows, model_rows = [], []
    for s in result.strategies:
        for p in s.phases:
            phase_rows.append([s.name, p["phase"], p["spend"], p["share"], p["reach_rate"],
                               p["success_rate"], p["attempts_per_reach"]])
        for m in s.model_breakdown:
            model_rows.append([s.name, m["model"], m["provider"], m["tier"], m["spend"],
                               m["share"], m["attempts"], m["input_tokens"],
                               m["cached_input_tokens"], m["output_tokens"]])
    return phase_rows, model_rows


PHASE_COLUMNS = ["strategy", "phase", "spend/task", "share", "reached", "success", "attempts"]
MODEL_COLUMNS = ["strategy", "model", "provider", "tier", "spend/task", "share", "attempts",
                 "input tok", "cached tok", "output tok"]


def render_compare(result, fmt: str, breakdown: bool = False) -> str:
    if fmt == "json":
        return to_json(result.to_dict(breakdown=breakdown))
    if fmt in ("csv", "markdown"):
        if fmt == "csv" and not breakdown:
            return to_csv(["name", "kind", "cost_per_completed_task", "spend_per_task",
                           "completion_rate", "defect_rate", "review_minutes",
                           "expected_attempts", "expected_retries", "premium_share", "savings",
                           "savings_vs", "pareto"], _compare_rows(result, human=False))
        if fmt == "csv":
            phase_rows, model_rows = _breakdown_rows(result)
            return to_csv(["strategy", "phase", "spend", "share", "reach_rate", "success_rate",
                           "attempts_per_reach"], phase_rows) + "\n" + to_csv(
                ["strategy", "model", "provider", "tier", "spend", "share", "attempts",
                 "input_tokens", "cached_input_tokens", "output_tokens"], model_rows)
        out = [f"**{result.workload_name}** workload, prices as of {result.prices_as_of}\n",
               to_markdown(COMPARE_COLUMNS, _compare_rows(result, human=True))]
        if result.engine == "montecarlo":
            out.append("\n" + to_markdown(MC_COLUMNS, _mc_rows(result)))
        if breakdown:
            pr, mr = _breakdown_rows(result)
            out += ["\n" + to_markdown(PHASE_COLUMNS, _fmt_phase(pr)),
                    "\n" + to_markdown(MODEL_COLUMNS, _fmt_model(mr))]
        return "\n".join(out)
    # table
    caption = ("cost/completed = spend per attempted task / completion rate. savings: against "
               "the cheapest single model that completes at least as often. * = Pareto-efficient "
               "(cost, completion, defects).")
    title = (f"{result.workload_name}: cost per completed task "
             f"(prices as of {result.prices_as_of}, engine: {result.engine})")
    items = [rich_table(title, COMPARE_COLUMNS, _compare_rows(result, human=True),
                        right=range(1, 10), caption=caption)]
    if result.engine == "montecarlo":
        items.append(rich_table(_mc_title(result), MC_COLUMNS, _mc_rows(result),
                                right=range(1, 8)))
    if breakdown:
        pr, mr = _breakdown_rows(result)
        items.append(rich_table("per phase", PHASE_COLUMNS, _fmt_phase(pr), right=range(2, 7)))
        items.append(rich_table("per model", MODEL_COLUMNS, _fmt_model(mr), right=range(4, 10)))
    return render_rich(items)


MC_COLUMNS = ["strategy", "± cost/completed", "± spend/task", "± completion", "± defects",
              "cost/task P50", "P90", "P99"]


def _mc_title(result):
    s = result.settings
    return (f"Monte Carlo: {s.get('samples', 0):,} tasks per strategy, seed {s.get('seed')}; "
            f"± = one standard error; percentiles of the spend per attempted task")


def _mc_rows(result):
    rows = []
    for s in result.strategies:
        mc = s.extra.get("montecarlo", {})
        se, q = mc.get("stderr", {}), mc.get("cost_percentiles", {})
        rows.append([s.name, money(se.get("cost_per_completed_task")),
                     money(se.get("spend_per_task")), pct(se.get("completion_rate"), 3),
                     pct(se.get("defect_rate"), 3), money(q.get("p50")), money(q.get("p90")),
                     money(q.get("p99"))])
    return rows


def _fmt_phase(rows):
    return [[r[0], r[1], money(r[2]), pct(r[3]), pct(r[4]), pct(r[5]), f"{r[6]:.2f}"]
            for r in rows]


def _fmt_model(rows):
    return [[r[0], r[1], r[2], r[3], money(r[4]), pct(r[5]), f"{r[6]:.2f}", f"{r[7]:,.0f}",
             f"{r[8]:,.0f}", f"{r[9]:,.0f}"] for r in rows]

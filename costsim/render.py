"""Views of result objects: table (Rich), JSON, CSV, Markdown. No arithmetic beyond formatting."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from typing import Any, Sequence

FORMATS = ("table", "json", "csv", "markdown")


def money(x: float | None, digits: int = 4) -> str:
    """``$1.2785``; ``-$3.10`` (the sign before the dollar); ``never completes`` for infinity."""
    if x is None:
        return "-"
    if math.isinf(x):
        return "never completes"
    sign = "-" if x < 0 and round(x, digits) != 0 else ""
    return f"{sign}${abs(x):,.{digits}f}"


def dollars(x: float | None) -> str:
    """A monthly amount: whole dollars from $100 (``$1,902``), cents below (``$60.15``)."""
    if x is None or (isinstance(x, float) and math.isinf(x)):
        return money(x)
    return money(x, 0 if abs(x) >= 100 else 2)


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
        if type(o).__module__ == "numpy" and hasattr(o, "item"):
            o = o.item()        # a NumPy scalar (np.bool_, np.float64) that slipped through
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
    """A table of the fixed columns ``headers`` (kept for callers that have not moved to
    :func:`fit_table`; it fits the terminal the same way, never cutting a right-aligned
    column, i.e. a number)."""
    right = set(right)
    cols = [Column(h, numeric=i in right) for i, h in enumerate(headers)]
    return fit_table(title, cols, rows, caption=caption)


# --- tables that fit the terminal -----------------------------------------------------------
#
# The 80-column policy. A table is a list of Columns in reading order: the figures a reader
# needs first come first, with level 0; columns of level 1, 2, ... are shown while the table
# fits the terminal and dropped from the highest level (rightmost first) when it does not; a
# line under the table names them and how to see them (--wide). A number is never cut, never
# wrapped and never ellipsised: numeric columns are as wide as their widest cell; text columns
# (names) wrap onto a second line before anything else gives. --wide shows every column
# whatever the width (the terminal wraps the lines instead).

#: Terminal width used when output is not a terminal and COLUMNS is not set.
DEFAULT_WIDTH = 80
#: A text column (strategy or model names) is not squeezed below this many characters.
TEXT_MIN = 16
_GAP = 2          # characters between two columns (one of padding, one of divider)


@dataclass(frozen=True)
class Column:
    """One column: ``header`` (a newline lets it take two lines), ``numeric`` (right-aligned,
    never cut or wrapped), ``level`` (0: always shown; higher: dropped first when the terminal
    is narrow)."""

    header: str
    numeric: bool = True
    level: int = 0

    @property
    def flat(self) -> str:
        """The header on one line (Markdown, CSV, notes)."""
        return " ".join(self.header.split())


def terminal_width() -> int:
    """COLUMNS if set, else the terminal's width, else :data:`DEFAULT_WIDTH` (pipes, files)."""
    import os
    import shutil
    import sys

    env = os.environ.get("COLUMNS", "")
    if env.strip().isdigit() and int(env) > 0:
        return int(env)
    if sys.stdout.isatty():
        return shutil.get_terminal_size((DEFAULT_WIDTH, 24)).columns
    return DEFAULT_WIDTH


def _cell_len(text: str) -> int:
    from rich.cells import cell_len

    return max((cell_len(line) for line in str(text).split("\n")), default=0)


def _longest_word(text: str) -> int:
    return max((_cell_len(w) for w in str(text).split()), default=0)


@dataclass
class FittedTable:
    """A Rich table laid out for one width, the columns it left out and the width it needs."""

    table: Any
    width: int
    hidden: list[str]
    hint: str | None = None

    def __rich_console__(self, console, options):
        yield self.table
        if self.hidden and self.hint is not False:
            yield _hidden_note(self.hidden, self.hint)


def _hidden_note(hidden: list[str], hint: str | None):
    from rich.text import Text

    what = ", ".join(hidden)
    how = hint or "--wide shows them"
    n = len(hidden)
    return Text(f"({n} more column{'s' if n != 1 else ''}: {what}; {how})", style="dim")


def fit_table(title: str | None, columns: Sequence[Column], rows: Sequence[Sequence[Any]], *,
              caption: str | None = None, wide: bool = False, width: int | None = None,
              hint: str | None = None) -> FittedTable:
    """Lay out a table for ``width`` (default :func:`terminal_width`) by the policy above.

    ``rows`` hold already-formatted cells, one per column. ``hint`` replaces "--wide shows
    them" in the note about left-out columns. Render the result with :func:`render_rich`.
    """
    from rich import box
    from rich.table import Table

    width = width or terminal_width()
    rows = [[("" if v is None else str(v)) for v in r] for r in rows]
    cols = list(columns)
    natural = [max([_cell_len(c.header)] + [_cell_len(r[i]) for r in rows]) for i, c in
               enumerate(cols)]
    minimum = []
    for i, c in enumerate(cols):
        cells = max([0] + [_cell_len(r[i]) for r in rows])
        if c.numeric:       # never cut: its widest cell and each header line whole
            minimum.append(max(cells, _cell_len(c.header)))
        else:               # names may wrap, headers too
            minimum.append(max(_longest_word(c.header), min(natural[i], TEXT_MIN)))

    keep = list(range(len(cols)))

    def needed(idx, full_names=False):
        return sum(natural[i] if full_names and not cols[i].numeric else minimum[i]
                   for i in idx) + _GAP * max(len(idx) - 1, 0)

    hidden: list[int] = []
    if not wide:
        # An optional column shows only if the names can stay whole beside it.
        while needed(keep, full_names=True) > width:
            droppable = [i for i in keep if cols[i].level > 0]
            if not droppable:
                break
            top = max(cols[i].level for i in droppable)
            victim = max(i for i in droppable if cols[i].level == top)
            keep.remove(victim)
            hidden.append(victim)
    widths = {i: minimum[i] for i in keep}
    room = (10**6 if wide else width) - needed(keep)
    if room < 0:            # too wide whatever gives: keep names whole, the terminal wraps
        room = 10**6
    # Grow text columns first (whole names), then headers back onto one line.
    for i in sorted(keep, key=lambda i: cols[i].numeric):
        if room <= 0:
            break
        grow = min(room, natural[i] - widths[i])
        widths[i] += grow
        room -= grow
    total = sum(widths.values()) + _GAP * max(len(keep) - 1, 0)

    t = Table(title=title, caption=caption, box=box.SIMPLE_HEAD, show_edge=False,
              pad_edge=False, padding=(0, 1, 0, 0), header_style="bold", title_justify="left",
              caption_justify="left", collapse_padding=False)
    for i in keep:
        c = cols[i]
        t.add_column(c.header, justify="right" if c.numeric else "left", width=widths[i],
                     no_wrap=c.numeric, overflow="fold")
    for r in rows:
        t.add_row(*[r[i] if cols[i].numeric else _wrap_name(r[i], widths[i]) for i in keep])
    return FittedTable(table=t, width=total, hidden=[cols[i].flat for i in sorted(hidden)],
                       hint=hint)


def _wrap_name(text: str, width: int) -> str:
    """Break a long name after ``-``, ``/``, ``:``, ``_`` or a space to fit ``width``
    (``cheapest-routing-`` / ``full-history``), folding only a part longer than the width."""
    import re

    if _cell_len(text) <= width or width < 1:
        return text
    parts = [p for p in re.split(r"(?<=[-/:_ ])", text) if p]
    lines, cur = [], ""
    for part in parts:
        while len(part) > width:
            if cur:
                lines.append(cur)
                cur = ""
            lines.append(part[:width])
            part = part[width:]
        if len(cur) + len(part) > width:
            lines.append(cur)
            cur = part
        else:
            cur += part
    if cur:
        lines.append(cur)
    return "\n".join(line.rstrip() for line in lines)


def fit_problems(text: str, width: int) -> list[str]:
    """What breaks the 80-column policy in rendered ``text``: lines wider than ``width`` and
    any ellipsis (Rich's sign of a cut cell). Empty when the rendering is fine. Used by the
    tests; see :func:`tests.helpers.assert_fits`."""
    from rich.cells import cell_len

    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if cell_len(line) > width:
            out.append(f"line {n} is {cell_len(line)} columns wide (> {width}): {line!r}")
        if "…" in line:
            out.append(f"line {n} has an ellipsis: {line!r}")
    return out


def render_rich(renderables, width: int | None = None) -> str:
    """Render Rich objects (and plain strings) to text at ``width`` (default
    :func:`terminal_width`), wider only where a table needs it (``--wide``, or columns that
    cannot give). Colour only on a terminal."""
    import sys

    from rich.console import Console

    buf = io.StringIO()
    tty = sys.stdout.isatty()
    width = width or terminal_width()
    need = max([width] + [getattr(r, "width", 0) for r in renderables
                          if isinstance(r, FittedTable)])
    console = Console(file=buf, width=need, force_terminal=tty,
                      color_system="auto" if tty else None, highlight=False, soft_wrap=False,
                      emoji=False, markup=False)
    for r in renderables:
        console.print(r)
        if isinstance(r, FittedTable):
            console.print()
    import re

    # no trailing blanks (also before a colour reset on a terminal)
    text = "\n".join(re.sub(r" +((?:\x1b\[[0-9;]*m)*)$", r"\1", line)
                     for line in buf.getvalue().splitlines())
    return text.rstrip("\n") + "\n"


# --- compare --------------------------------------------------------------------------------

def _compare_columns() -> list[Column]:
    """The figures a reader needs first (level 0), then the rest by how often they matter."""
    return [
        Column("strategy", numeric=False),
        Column("cost per\ncompleted"),
        Column("monthly\nspend"),
        Column("completion"),
        Column("defects"),
        Column("savings"),
        Column("monthly\nsavings", level=1),
        Column("pareto", level=1),
        Column("review\nmin", level=2),
        Column("spend per\ntask", level=3),
        Column("premium", level=3),
        Column("attempts", level=4),
        Column("retries", level=4),
    ]


def _compare_human_rows(result) -> list[list[str]]:
    rows = []
    for s in result.strategies:
        base = s.name == result.baseline
        rows.append([
            s.name, money(s.cost_per_completed_task), dollars(s.monthly_spend),
            pct(s.completion_rate, 2), pct(s.defect_rate, 2),
            "baseline" if base else pct(s.savings), "-" if base else dollars(s.monthly_savings),
            "*" if s.pareto else ("=" if s.same_as else ""),
            "-" if s.review_minutes is None else f"{s.review_minutes:.1f}",
            money(s.spend_per_task), pct(s.premium_share, 0),
            f"{s.expected_attempts:.2f}", f"{s.expected_retries:.2f}"])
    return rows


CSV_COLUMNS = ["name", "kind", "cost_per_completed_task", "spend_per_task", "monthly_spend",
               "completion_rate", "defect_rate", "review_minutes", "expected_attempts",
               "expected_retries", "premium_share", "savings", "monthly_savings", "savings_vs",
               "pareto", "same_as"]


def _compare_data_rows(result) -> list[list[Any]]:
    return [[getattr(s, c) for c in CSV_COLUMNS] for s in result.strategies]


def _compare_notes(result, shown: set[str] | None = None) -> list[str]:
    """The lines under the table: what the figures are, what savings are against, ties."""
    n = result.tasks_per_month
    out = [f"cost per completed = spend per attempted task / completion rate; per month: at "
           f"the workload's {n:,.0f} tasks a month."]
    if result.baseline:
        why = ("set with --baseline" if result.baseline_chosen_by == "--baseline"
               else f"{result.baseline_chosen_by}; --baseline STRATEGY changes it")
        out.append(f"savings: against {result.baseline} ({why}); per completed task, and its "
                   f"spend per month minus the strategy's.")
    else:
        out.append("savings: no single-model strategy to measure them against (--baseline).")
    if shown is None or "pareto" in shown:
        out.append("pareto * : no other strategy is cheaper per completed task, completes as "
                   "often and ships as few defects.")
    for s in result.strategies:
        if s.same_as:
            out.append(f"{s.name} has the same figures as {s.same_as} (it makes the same "
                       f"choices){'; marked =' if shown is None or 'pareto' in shown else ''}.")
    return out


def render_compare(result, fmt: str, breakdown: bool = False, wide: bool = False) -> str:
    if fmt == "json":
        return to_json(result.to_dict(breakdown=breakdown))
    if fmt == "csv":
        if not breakdown:
            return to_csv(CSV_COLUMNS, _compare_data_rows(result))
        phase_rows, model_rows = _breakdown_rows(result)
        return to_csv(["strategy", "phase", "spend", "share", "reach_rate", "success_rate",
                       "attempts_per_reach"], phase_rows) + "\n" + to_csv(
            ["strategy", "model", "provider", "tier", "spend", "share", "attempts",
             "input_tokens", "cached_input_tokens", "output_tokens"], model_rows)
    cols = _compare_columns()
    rows = _compare_human_rows(result)
    if fmt == "markdown":
        out = [f"**{result.workload_name}** workload, {result.tasks_per_month:,.0f} tasks a "
               f"month, prices as of {result.prices_as_of}\n",
               to_markdown([c.flat for c in cols], rows),
               "\n".join(f"- {n}" for n in _compare_notes(result)) + "\n"]
        if result.engine == "montecarlo":
            out.append("\n" + to_markdown([c.flat for c in MC_COLUMNS], _mc_rows(result)))
        if result.engine == "replay":
            out.append("\n" + to_markdown([c.flat for c in REPLAY_COLUMNS], _replay_rows(result))
                       + "\n" + "\n".join(f"- {n}" for n in _replay_notes(result)) + "\n")
            if _left_out_rows(result):
                out.append("\n" + to_markdown([c.flat for c in LEFT_OUT_COLUMNS],
                                               _left_out_rows(result)))
        if breakdown:
            pr, mr = _breakdown_rows(result)
            out += ["\n" + to_markdown([c.flat for c in PHASE_COLUMNS], _fmt_phase(pr)),
                    "\n" + to_markdown([c.flat for c in MODEL_COLUMNS], _fmt_model(mr))]
        return "\n".join(out)
    title = (f"{result.workload_name}: cost per completed task, {result.tasks_per_month:,.0f} "
             f"tasks a month (prices as of {result.prices_as_of}, engine: {result.engine})")
    main = fit_table(title, cols, rows, wide=wide,
                     hint="--wide shows them" + ("" if breakdown else ", --breakdown adds "
                                                 "spend per phase and model"))
    shown = {c.flat for c in cols} - set(main.hidden)
    from rich.text import Text

    items: list = [main, Text("\n".join(_compare_notes(result, shown)), style="dim")]
    if result.engine == "montecarlo":
        items.append(fit_table(_mc_title(result), MC_COLUMNS, _mc_rows(result), wide=wide))
    if result.engine == "replay":
        items.append(fit_table(f"Replay of {result.settings.get('log')}", REPLAY_COLUMNS,
                               _replay_rows(result), wide=wide))
        items.append(Text("\n".join(_replay_notes(result)), style="dim"))
        if _left_out_rows(result):
            items.append(fit_table("left out: tasks lacking a record the strategy needs",
                                   LEFT_OUT_COLUMNS, _left_out_rows(result), wide=wide))
    if breakdown:
        pr, mr = _breakdown_rows(result)
        items.append(fit_table("spend per phase (per attempted task)", PHASE_COLUMNS,
                               _fmt_phase(pr), wide=wide))
        items.append(fit_table("spend per model (per attempted task)", MODEL_COLUMNS,
                               _fmt_model(mr), wide=wide))
    return render_rich(items)


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


PHASE_COLUMNS = [Column("strategy", numeric=False), Column("phase", numeric=False),
                 Column("spend\nper task"), Column("share"), Column("reached", level=1),
                 Column("success", level=1), Column("attempts", level=1)]
MODEL_COLUMNS = [Column("strategy", numeric=False), Column("model", numeric=False),
                 Column("spend\nper task"), Column("share"), Column("attempts", level=1),
                 Column("tier", numeric=False, level=2),
                 Column("provider", numeric=False, level=3),
                 Column("input\ntokens", level=4), Column("cached\ntokens", level=4),
                 Column("output\ntokens", level=4)]
MC_COLUMNS = [Column("strategy", numeric=False), Column("± cost per\ncompleted"),
              Column("± spend\nper task", level=2), Column("± completion"),
              Column("± defects", level=1), Column("spend per task\nP50", level=3),
              Column("P90"), Column("P99", level=1)]


def _mc_title(result):
    s = result.settings
    return (f"Monte Carlo: {s.get('samples', 0):,} tasks per strategy, seed {s.get('seed')}; "
            f"± = one standard error; P90, P99: percentiles of the spend per attempted task")


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
    return [[r[0], r[1], money(r[4]), pct(r[5]), f"{r[6]:.2f}", r[3], r[2], f"{r[7]:,.0f}",
             f"{r[8]:,.0f}", f"{r[9]:,.0f}"] for r in rows]


# --- replay ---------------------------------------------------------------------------------

REPLAY_COLUMNS = [Column("strategy", numeric=False), Column("tasks\ncovered"),
                  Column("completion\n95% interval"), Column("cost per completed\n95% interval"),
                  Column("spend per task\nP50", level=2), Column("P90", level=1),
                  Column("P99", level=1)]
LEFT_OUT_COLUMNS = [Column("strategy", numeric=False), Column("tasks\nleft out"),
                    Column("first record missing (tasks)", numeric=False)]


def _replay_notes(result) -> list[str]:
    s = result.settings
    k = s.get("max_attempts", {})
    out = [f"{s.get('tasks', 0):,} tasks in {s.get('runs', 1):,} run(s); attempts per phase: "
           f"{k.get('text', '-')}.",
           f"{pct(s.get('level', 0.95), 0)} intervals: {s.get('bootstrap', 0):,} bootstrap "
           f"resamples of the tasks (seed {s.get('seed')}); P50-P99: the recorded spend per "
           f"task.",
           "Savings only against a baseline replayed on the same tasks; defects are not "
           "replayed."]
    return out


def _span(lo_hi, fmt) -> str:
    if not lo_hi or any(x is None or (isinstance(x, float) and math.isnan(x)) for x in lo_hi):
        return "-"
    return f"{fmt(lo_hi[0])} - {fmt(lo_hi[1])}"


def _replay_rows(result):
    rows = []
    for s in result.strategies:
        rp = s.extra.get("replay", {})
        iv, q = rp.get("intervals", {}), rp.get("cost_percentiles", {})
        rows.append([s.name, pct(rp.get("coverage")),
                     _span(iv.get("completion_rate"), lambda x: pct(x, 1)),
                     _span(iv.get("cost_per_completed_task"), money),
                     money(q.get("p50")), money(q.get("p90")), money(q.get("p99"))])
    return rows


def _left_out_rows(result):
    rows = []
    for s in result.strategies:
        rp = s.extra.get("replay", {})
        lost = rp.get("tasks", 0) - rp.get("covered", 0)
        if lost and rp.get("left_out"):
            x = rp["left_out"][0]
            what = "summary after" if x["missing"] == "summary" else "attempt on"
            n = len(rp["left_out"]) - 1
            more = f"; and {n} other record{'s' if n > 1 else ''}" if n else ""
            rows.append([s.name, f"{lost:,}",
                         f"{x['model']} {what} {x['phase']} ({x['tasks']:,}{more})"])
    return rows

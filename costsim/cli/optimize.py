"""`costsim optimize`: parse flags, call :func:`costsim.search.optimize.optimize`, render."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import (PricesOpt, ReportFormatOpt, WorkloadOpt, emit, guard_files, handle_errors,
                     warn)
from ..errors import CostsimError

INFEASIBLE_EXIT = 1

HELP = (
    "Search routing policies for the cheapest that meets quality targets.\n\n"
    "Exact: every combination of a starting tier per phase, escalation after 1-3 failures, "
    "summary or full-history handoff and (unless --fixed-tiers) the model in each tier is "
    "evaluated, around a base policy whose tier names and signals are kept. The given "
    "policies and every single model of the space compete too: when one of them is cheaper "
    "and meets the targets, it wins and the report says so.\n\n"
    "Prints the best strategy beside the others, its routes, and the Pareto frontiers of cost "
    "against completion and against defect rate. Exit status 1 (and a message saying which "
    "target fails and the best value reachable) when nothing meets the targets; 2 for bad "
    "input, or for a space larger than the --max-policies ceiling."
)


def register(app: typer.Typer) -> None:
    @app.command(help=HELP)
    @handle_errors
    def optimize(
        prices: PricesOpt = None,
        workload: WorkloadOpt = None,
        policy: Annotated[Optional[list[Path]], typer.Option(
            "--policy", "-p", metavar="FILE",
            help="Base policy (a YAML file or a bundled name): the space keeps its tier names "
                 "and signals, and its models are what --fixed-tiers keeps. Repeat to add "
                 "policies that compete as they are. Default: the bundled cheapest-routing.")]
            = None,
        fixed_tiers: Annotated[bool, typer.Option(
            "--fixed-tiers", help="Keep the base policy's model in every tier (search routes, "
                                  "escalation and handoff only).")] = False,
        candidates: Annotated[Optional[list[str]], typer.Option(
            "--candidates", "-c", metavar="M1,M2",
            help="Only these models may fill a tier (comma-separated or repeatable); each "
                 "fills the tiers of its price-table class.")] = None,
        min_completion: Annotated[Optional[float], typer.Option(
            metavar="RATE", help="Target: completion rate at least RATE (0-1).")] = None,
        max_defect_rate: Annotated[Optional[float], typer.Option(
            metavar="RATE", help="Target: defect rate at most RATE (0-1).")] = None,
        max_review_minutes: Annotated[Optional[float], typer.Option(
            metavar="MIN", help="Target: review minutes per completed task at most MIN.")] = None,
        name: Annotated[Optional[str], typer.Option(
            metavar="NAME", help="Name of the written policy. Default: the base policy's name "
                                 "with -optimized.")] = None,
        out: Annotated[Optional[Path], typer.Option(
            "--out", "-o", dir_okay=False, metavar="FILE",
            help="Write the best strategy as a policy YAML file (atomically) that every "
                 "command loads; never one of the input files.")] = None,
        plot: Annotated[Optional[Path], typer.Option(
            dir_okay=False, metavar="FILE",
            help="Plot cost against completion to FILE (.png, .svg or .pdf; needs matplotlib: "
                 "pip install 'costsim[plot]'); never one of the input files.")] = None,
        frontier_rows: Annotated[int, typer.Option(
            metavar="N",
            help="Frontier rows shown in table and markdown output (JSON has them all).")] = 12,
        wide: Annotated[bool, typer.Option(
            "--wide", help="Show every column however wide the table gets, and spell out each "
                           "frontier policy in full.")] = False,
        max_policies: Annotated[int, typer.Option(
            metavar="N",
            help="Refuse a space of more than N policies (exit 2) instead of a long run.")]
            = 60_000_000,
        format: ReportFormatOpt = "table",
    ):
        from .. import paths
        from ..search.optimize import DEFAULT_BASE_POLICY, optimize as run

        for flag, v in (("--frontier-rows", frontier_rows), ("--max-policies", max_policies)):
            if v < 1:
                raise CostsimError(f"must be at least 1, got {v}", path=flag)
        cands = [c.strip() for item in (candidates or []) for c in item.split(",") if c.strip()]
        if candidates is not None and not cands:
            raise CostsimError("no model given", path="--candidates")
        prices_path = paths.resolve_prices_path(prices)
        workload_path = paths.resolve_workload_path(workload)
        policy_paths = (paths.resolve_policy_paths(policy) if policy
                        else [paths.bundled_dir("policies") / DEFAULT_BASE_POLICY])
        guard_files(reads={"--prices": prices_path, "--workload": workload_path,
                           "--policy": policy_paths},
                    writes={"--out": out, "--plot": plot}, images=["--plot"])
        result = run(prices_path, policy_paths, workload_path, fixed_tiers=fixed_tiers,
                     candidates=cands or None, min_completion=min_completion,
                     max_defect_rate=max_defect_rate, max_review_minutes=max_review_minutes,
                     name=name, max_policies=max_policies)
        for n in result.notes:
            warn(n)
        if out is not None and result.feasible:
            result.write_policy(out)
            typer.echo(f"wrote {out}", err=True)
        if plot is not None:
            write_plot(result, plot)
            typer.echo(f"wrote {plot}", err=True)
        emit(render_optimize(result, getattr(format, "value", format), frontier_rows,
                             written=str(out) if out is not None and result.feasible else None,
                             wide=wide),
             None)
        if not result.feasible:
            for line in result.message().splitlines():
                typer.echo(f"infeasible: {line}", err=True)
            if out is not None:
                typer.echo(f"nothing written to {out}", err=True)
            raise typer.Exit(INFEASIBLE_EXIT)


# --- rendering (formatting only) -----------------------------------------------------------------

FRONTIER_DIGITS = 3          # completion and defect rate are shown as 99.123%


def _money(x, digits: int = 4) -> str:
    from ..render import money

    return money(x, digits)


def _pct(x, digits: int = FRONTIER_DIGITS) -> str:
    from ..render import pct

    return pct(x, digits)


def _thin(points: list, n: int) -> list:
    if len(points) <= n:
        return points
    idx = sorted({round(i * (len(points) - 1) / (n - 1)) for i in range(n)}) if n > 1 else [0]
    return [points[i] for i in idx]


def _targets(result, *, skip: str | None = None) -> list[str]:
    from ..search.optimize import target_phrases      # numpy-heavy module: not at start-up

    return [w for k, w in target_phrases(result.constraints).items() if k != skip]


def _letters(tiers: list[str]) -> dict[str, str]:
    """One character per tier name for the route codes: its initial, or its number when two
    initials collide."""
    first = [t[:1].upper() or "?" for t in tiers]
    if len(set(first)) == len(first):
        return dict(zip(tiers, first))
    return {t: str(i + 1) for i, t in enumerate(tiers)}


def _candidate_table(result):
    """(columns, rows) of the best strategy beside the other candidates: the figures a reader
    needs first at level 0; review minutes (unless a target) and spend per task may give way
    to a narrow terminal."""
    from ..render import Column

    review_target = result.constraints.get("max_review_minutes") is not None
    cols = [Column("strategy", numeric=False), Column("cost per\ncompleted"),
            Column("per\nmonth"), Column("completion"), Column("defects"),
            Column("meets\ntargets"), Column("review\nmin", level=0 if review_target else 1),
            Column("spend\nper task", level=2)]

    def cells(x, meets):
        return [_money(x.cost_per_completed_task), _money(x.monthly_spend, 0),
                _pct(x.completion_rate), _pct(x.defect_rate), "yes" if meets else "no",
                f"{x.review_minutes:.2f}", _money(x.spend_per_task)]

    rows = []
    if result.best is not None:
        label = result.best_name if result.best_kind != "searched" else result.best_policy["name"]
        rows.append(["* " + label] + cells(result.best, True))
    for x in sorted(result.baselines, key=lambda x: (x.cost_per_completed_task, x.name)):
        if result.best_kind != "searched" and x.name == result.best_name:
            continue
        rows.append(["  " + x.name] + cells(x, x.meets_targets))
    if result.best_searched is not None and result.best_kind != "searched":
        rows.append(["  best searched policy"] + cells(result.best_searched, True))
    return cols, rows


def _frontier_table(result, points, key: str, rows_n: int, wide: bool):
    """(columns, rows, points shown, model-set legend) of a frontier."""
    from ..render import Column
    from ..search.result import distinct_at

    shown = _thin(distinct_at(points, key, FRONTIER_DIGITS), rows_n)
    tiers = result.space["tiers"]
    code = _letters(tiers)
    if wide:
        cols = [Column("cost per\ncompleted"), Column("completion"), Column("defects"),
                Column("review\nmin"), Column("spend\nper task"),
                Column("policy", numeric=False)]
        rows = [[_money(p.cost_per_completed_task), _pct(p.completion_rate),
                 _pct(p.defect_rate), f"{p.review_minutes:.2f}", _money(p.spend_per_task),
                 p.label()] for p in shown]
        return cols, rows, shown, []
    cols = [Column("cost per\ncompleted"), Column("completion"), Column("defects"),
            Column("routes", numeric=False), Column("esc.", numeric=False),
            Column("handoff", numeric=False), Column("models", numeric=False)]
    rows = []
    sets: dict[tuple, str] = {}
    for p in shown:
        if p.kind != "searched" and not p.routes:
            rows.append([_money(p.cost_per_completed_task), _pct(p.completion_rate),
                         _pct(p.defect_rate), p.name, "-", "-", "-"])
            continue
        models = tuple(p.tiers[t] for t in tiers)
        label = sets.setdefault(models, _set_label(len(sets)))
        routes = "".join(code.get(p.routes.get(ph, ""), "?") for ph in result.space["phases"])
        rows.append([_money(p.cost_per_completed_task), _pct(p.completion_rate),
                     _pct(p.defect_rate), routes, str(p.after_failures),
                     "summary" if p.handoff == "summary" else "full", label])
    legend = [f"{label}: {', '.join(models)}" for models, label in sets.items()]
    return cols, rows, shown, legend


def _set_label(i: int) -> str:
    """A, B, ..., Z, AA, AB, ..."""
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


def _tables(result, rows_n: int, wide: bool = False):
    """(title, columns, rows, notes) of every table the report shows; the notes are printed
    under the table."""
    from ..render import Column

    out = []
    cols, rows = _candidate_table(result)
    out.append(("Best strategy and the other candidates", cols, rows,
                [(f"targets: {', '.join(_targets(result))}; * = the best meeting them"
                  if _targets(result) else "no targets; * = the cheapest per completed task")
                 + f"; per month = spend per task x {result.tasks_per_month:,g} tasks"]))
    b = result.best
    if b is not None and b.routes:
        tiers = ", ".join(f"{t} = {m}" for t, m in b.tiers.items())
        routes = [[ph, tier, b.tiers[tier]] for ph, tier in b.routes.items()]
        out.append(("Routes of the best policy",
                    [Column("phase", numeric=False), Column("start tier", numeric=False),
                     Column("model", numeric=False)], routes,
                    [f"tiers: {tiers}; escalate after {b.after_failures} "
                     f"failure{'s' if b.after_failures != 1 else ''}; handoff: {b.handoff}"]))
    code = _letters(result.space["tiers"])
    legend = (f"routes: the start tier of each phase ({' '.join(result.space['phases'])}): "
              + ", ".join(f"{c} = {t}" for t, c in code.items())
              + "; esc. = escalate after that many failures")
    for what, pts, key, skip in (("completion", result.frontier_completion, "completion_rate",
                                  "min_completion"),
                                 ("defect rate", result.frontier_defect, "defect_rate",
                                  "max_defect_rate")):
        cols, rows, shown, sets = _frontier_table(result, pts, key, rows_n, wide)
        others = _targets(result, skip=skip)
        title = (f"Pareto frontier: cost vs {what}, {len(shown)} of {len(pts)} policies"
                 + (f" ({', '.join(others)})" if others else ""))
        notes = ["rows that read the same as a cheaper row are left out; JSON lists all"]
        if not wide:
            notes += [legend] + (["models (by tier):"] + [f"  {s}" for s in sets] if sets
                                 else [])
        out.append((title, cols, rows, notes))
    return out


def _headline(result) -> list[str]:
    sp = result.space
    singles = sum(1 for b in result.baselines if b.kind == "single")
    given = sum(1 for b in result.baselines if b.kind != "single")
    models = ", ".join(f"{t} {len(m)}" for t, m in sp["tier_models"].items())
    af = sp["after_failures"]
    esc = f"{af[0]}-{af[-1]}" if af == list(range(af[0], af[-1] + 1)) else str(af)
    lines = [f"{result.workload_name}: searched {result.evaluated:,} routing policies in "
             f"{result.seconds:.2f} s around {result.base_policy} (prices as of "
             f"{result.prices_as_of})",
             f"space: {len(sp['phases'])} phases x {len(sp['tiers'])} tiers; escalation after "
             f"{esc} failures; handoff {' or '.join(sp['handoffs'])}; models per tier: {models}"]
    if result.baselines:
        lines.append(f"also compared: {singles} single model{'s' if singles != 1 else ''} and "
                     f"{given} given polic{'y' if given == 1 else 'ies'}")
    if result.feasible:
        lines.append(result.verdict())
    return lines


def render_optimize(result, fmt: str, rows_n: int = 12, written: str | None = None,
                    wide: bool = False) -> str:
    from ..render import fit_table, render_rich, to_json, to_markdown

    if fmt == "json":
        d = result.to_dict()
        d["written"] = written
        return to_json(d)
    if fmt == "markdown":
        parts = ["  \n".join(f"**{line}**" if i == 0 else line
                             for i, line in enumerate(_headline(result))) + "\n"]
        for title, cols, rows, notes in _tables(result, rows_n, wide=True):
            if not rows:
                parts.append(f"\n### {title}: none\n")
                continue
            parts.append(f"\n### {title}\n\n" + to_markdown([c.flat for c in cols], rows)
                         + "".join(f"\n{n}\n" for n in notes))
        if not result.feasible:
            parts.append("\n**Nothing meets the targets.**\n\n"
                         + "\n".join(f"- {i.message}" for i in result.infeasible) + "\n")
        return "".join(parts)
    # tables keep to the terminal (narrower columns first give way); --wide shows everything
    items: list = ["\n".join(_headline(result)) + "\n"]
    for title, cols, rows, notes in _tables(result, rows_n, wide):
        if not rows:
            items.append(f"{title}: none\n")
            continue
        items.append(fit_table(title, cols, rows, wide=wide))
        items.append("\n".join(notes) + "\n")
    if not result.feasible:
        items.append("Nothing meets the targets:\n" + result.message())
    elif written:
        items.append(f"best strategy written to {written}")
    return render_rich(items)


# --- plot ------------------------------------------------------------------------------------

def _spread_labels(ys: list[float], gap: float, lo: float, hi: float) -> list[float]:
    """Label positions (display units) near ``ys``, at least ``gap`` apart, order kept, inside
    [lo, hi] when they fit."""
    order = sorted(range(len(ys)), key=lambda i: ys[i])
    pos = [0.0] * len(ys)
    last = None
    for i in order:
        pos[i] = ys[i] if last is None else max(ys[i], last + gap)
        last = pos[i]
    shift = (sum(ys) - sum(pos)) / len(ys) if ys else 0.0     # centre the pushed-up stack
    pos = [p + shift for p in pos]
    if pos and max(pos) > hi:
        pos = [p - (max(pos) - hi) for p in pos]
    if pos and min(pos) < lo:
        pos = [p + (lo - min(pos)) for p in pos]
    return pos


def write_plot(result, path: Path) -> None:
    """:func:`plot_figure` saved to ``path`` (atomically) in the format its extension names."""
    import io

    import matplotlib.pyplot as plt

    from ..fsutil import atomic_write

    fig = plot_figure(result)
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lower().lstrip("."))
    plt.close(fig)
    atomic_write(path, buf.getvalue())


def plot_figure(result):
    """Frontier (cost vs completion), the single models and given policies as labelled points,
    the best as a star. The cost axis is logarithmic and reads in dollars; labels never
    overlap (they are stacked at the right with leader lines)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    except ImportError:
        raise CostsimError("drawing a chart needs matplotlib: pip install 'costsim[plot]'",
                           path="--plot") from None

    fig, ax = plt.subplots(figsize=(10, 6), dpi=110)
    fa = result.frontier_all
    if fa:
        ax.plot([p.completion_rate for p in fa], [p.cost_per_completed_task for p in fa],
                color="tab:blue", lw=1.2, marker=".", ms=3,
                label="Pareto frontier, cost vs completion (everything searched)")
    fc = result.frontier_completion
    others = _targets(result, skip="min_completion")
    if fc and others:
        ax.plot([p.completion_rate for p in fc], [p.cost_per_completed_task for p in fc],
                color="tab:green", lw=1.5, marker=".", ms=4,
                label=f"Pareto frontier with {', '.join(others)}")
    pts = [b for b in result.baselines if b.completion_rate > 0]
    for b in pts:
        single = b.kind == "single"
        ax.scatter([b.completion_rate], [b.cost_per_completed_task],
                   marker="o" if single else "s", color="tab:gray" if single else "tab:orange",
                   zorder=3, s=18)
    if result.best is not None:
        ax.scatter([result.best.completion_rate], [result.best.cost_per_completed_task],
                   marker="*", s=200, color="tab:red", zorder=4,
                   label=f"best meeting the targets ({result.best_name})")
    ax.set_xlabel("completion rate")
    ax.set_ylabel("cost per completed task")
    ax.set_yscale("log")
    money = FuncFormatter(lambda v, _: f"${v:,.2f}" if v >= 0.1 else f"${v:.3g}")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(money)
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * v:.4g}%"))
    ax.set_title(f"{result.workload_name}: cost vs completion, {result.evaluated:,} policies "
                 f"searched")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.subplots_adjust(right=0.72)
    # labels: one per distinct position, stacked in a column right of the axes
    if pts:
        groups: dict[tuple, list[str]] = {}
        for b in pts:
            groups.setdefault((b.completion_rate, b.cost_per_completed_task), []).append(b.name)
        fig.canvas.draw()
        to_fig = fig.transFigure.inverted()
        keys = list(groups)
        disp = [ax.transData.transform(k) for k in keys]
        height = fig.get_figheight() * fig.dpi
        gap = 9.5 * fig.dpi / 72                      # one 7-point line and a little air
        ys = _spread_labels([d[1] for d in disp], gap, gap, height - gap)
        for k, y in zip(keys, ys):
            _, yl = to_fig.transform((0, y))
            ax.annotate(", ".join(groups[k]), xy=k, xycoords="data", xytext=(0.735, yl),
                        textcoords="figure fraction", fontsize=7, va="center",
                        arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.5})
    return fig

"""`costsim optimize`: parse flags, call :func:`costsim.search.optimize.optimize`, render."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .common import PricesOpt, ReportFormatOpt, WorkloadOpt, emit, handle_errors, warn
from ..errors import CostsimError

INFEASIBLE_EXIT = 1


def register(app: typer.Typer) -> None:
    @app.command()
    @handle_errors
    def optimize(
        prices: PricesOpt = None,
        workload: WorkloadOpt = None,
        policy: Annotated[Optional[Path], typer.Option(
            "--policy", "-p", dir_okay=False,
            help="Base policy: its tier names and signals are kept, its models are the "
                 "--fixed-tiers choice. Default: the bundled cheapest-routing policy.")] = None,
        fixed_tiers: Annotated[bool, typer.Option(
            "--fixed-tiers", help="Keep the base policy's model in every tier (search routes, "
                                  "escalation and handoff only).")] = False,
        candidates: Annotated[Optional[list[str]], typer.Option(
            "--candidates", "-c", metavar="M1,M2",
            help="Only these models may fill a tier (comma-separated or repeatable); each "
                 "fills the tiers of its price-table class.")] = None,
        min_completion: Annotated[Optional[float], typer.Option(
            help="Target: completion rate at least this (0-1).")] = None,
        max_defect_rate: Annotated[Optional[float], typer.Option(
            help="Target: defect rate at most this (0-1).")] = None,
        max_review_minutes: Annotated[Optional[float], typer.Option(
            help="Target: review minutes per completed task at most this.")] = None,
        name: Annotated[Optional[str], typer.Option(
            help="Name of the written policy. Default: BASE-optimized.")] = None,
        out: Annotated[Optional[Path], typer.Option(
            "--out", "-o", dir_okay=False, metavar="FILE.yaml",
            help="Write the best policy as YAML (atomically); every command can load it.")] = None,
        plot: Annotated[Optional[Path], typer.Option(
            dir_okay=False, metavar="FILE.png",
            help="Plot the frontier and the single-model strategies (needs matplotlib: "
                 "pip install 'costsim[plot]').")] = None,
        frontier_rows: Annotated[int, typer.Option(
            min=1, help="Frontier rows shown in table/markdown output (JSON has them all).")] = 12,
        format: ReportFormatOpt = "table",
    ):
        """Search routing policies for the cheapest that meets quality targets.

        Exact: every combination of a starting tier per phase, escalation after 1-3 failures,
        summary or full-history handoff and (unless --fixed-tiers) the model in each tier is
        evaluated. Prints the best policy, the baselines and the Pareto frontiers of cost
        against completion and against defect rate. Exit status 1 (and a message saying which
        target fails and the best value reachable) when no policy meets the targets.
        """
        from ..search.optimize import optimize as run

        cands = [c.strip() for item in (candidates or []) for c in item.split(",") if c.strip()]
        if candidates is not None and not cands:
            raise CostsimError("no model given", path="--candidates")
        result = run(prices, policy, workload, fixed_tiers=fixed_tiers, candidates=cands or None,
                     min_completion=min_completion, max_defect_rate=max_defect_rate,
                     max_review_minutes=max_review_minutes, name=name)
        for n in result.notes:
            warn(n)
        if out is not None and result.feasible:
            result.write_policy(out)
            typer.echo(f"wrote {out}", err=True)
        if plot is not None:
            write_plot(result, plot)
            typer.echo(f"wrote {plot}", err=True)
        emit(render_optimize(result, getattr(format, "value", format), frontier_rows,
                             written=str(out) if out is not None and result.feasible else None),
             None)
        if not result.feasible:
            for line in result.message().splitlines():
                typer.echo(f"infeasible: {line}", err=True)
            if out is not None:
                typer.echo(f"nothing written to {out}", err=True)
            raise typer.Exit(INFEASIBLE_EXIT)


# --- rendering (formatting only) -----------------------------------------------------------------

METRIC_COLUMNS = ["strategy", "cost/completed", "spend/task", "completion", "defects",
                  "review min"]
FRONTIER_COLUMNS = ["cost/completed", "completion", "defects", "review min", "policy"]


def _metric_cells(x) -> list[str]:
    from ..render import money, pct

    return [money(x.cost_per_completed_task), money(x.spend_per_task),
            pct(x.completion_rate, 3), pct(x.defect_rate, 3), f"{x.review_minutes:.2f}"]


def _thin(points: list, n: int) -> list:
    if len(points) <= n:
        return points
    idx = sorted({round(i * (len(points) - 1) / (n - 1)) for i in range(n)}) if n > 1 else [0]
    return [points[i] for i in idx]


def _targets(result, *, skip: str | None = None) -> list[str]:
    from ..search.optimize import target_phrases      # numpy-heavy module: not at start-up

    return [w for k, w in target_phrases(result.constraints).items() if k != skip]


def _tables(result, rows_n: int) -> list[tuple[str, list[str], list[list[str]], str | None]]:
    """(title, headers, rows, caption) of every table the report shows."""
    out = []
    sp = result.space
    if result.best is not None:
        b = result.best
        rows = [["optimized (" + result.best_policy["name"] + ")"] + _metric_cells(b)]
    else:
        rows = []
    rows += [[x.name] + _metric_cells(x) for x in sorted(
        result.baselines, key=lambda x: (x.cost_per_completed_task, x.name))]
    out.append(("best policy and baselines", METRIC_COLUMNS, rows,
                f"targets: {', '.join(_targets(result)) or 'none'}"))
    if result.best is not None:
        b = result.best
        tiers = ", ".join(f"{t}={m}" for t, m in b.tiers.items())
        routes = [[ph, tier, b.tiers[tier]] for ph, tier in b.routes.items()]
        out.append(("routes of the best policy", ["phase", "start tier", "model"], routes,
                    f"tiers: {tiers}; escalate after {b.after_failures} failures; "
                    f"handoff: {b.handoff}"))
    others = _targets(result, skip="min_completion")
    fc = result.frontier_completion
    out.append((f"Pareto frontier: cost vs completion ({len(fc)} policies"
                + (f"; {', '.join(others)}" if others else "") + ")",
                FRONTIER_COLUMNS, [_metric_cells(p)[0:1] + _metric_cells(p)[2:] + [p.label()]
                                   for p in _thin(fc, rows_n)], None))
    others = _targets(result, skip="max_defect_rate")
    fd = result.frontier_defect
    out.append((f"Pareto frontier: cost vs defect rate ({len(fd)} policies"
                + (f"; {', '.join(others)}" if others else "") + ")",
                FRONTIER_COLUMNS, [_metric_cells(p)[0:1] + _metric_cells(p)[2:] + [p.label()]
                                   for p in _thin(fd, rows_n)], None))
    return out


def _headline(result) -> str:
    sp = result.space
    models = "; ".join(f"{t}: {len(m)}" for t, m in sp["tier_models"].items())
    return (f"{result.workload_name}: searched {result.evaluated:,} policies around "
            f"{result.base_policy} in {result.seconds:.2f} s ({len(sp['phases'])} phases x "
            f"{len(sp['tiers'])} tiers, after_failures {sp['after_failures']}, handoff "
            f"{'/'.join(sp['handoffs'])}, models per tier {models}); prices as of "
            f"{result.prices_as_of}")


def render_optimize(result, fmt: str, rows_n: int = 12, written: str | None = None) -> str:
    from ..render import render_rich, rich_table, to_json, to_markdown

    if fmt == "json":
        d = result.to_dict()
        d["written"] = written
        return to_json(d)
    tables = _tables(result, rows_n)
    if fmt == "markdown":
        parts = [f"**{_headline(result)}**\n"]
        for title, headers, rows, caption in tables:
            parts.append(f"\n### {title}\n\n" + to_markdown(headers, rows)
                         + (f"\n{caption}\n" if caption else ""))
        if not result.feasible:
            parts.append("\n**No policy meets the targets.**\n\n"
                         + "\n".join(f"- {i.message}" for i in result.infeasible) + "\n")
        return "".join(parts)
    items = [_headline(result)]
    for title, headers, rows, caption in tables:
        right = range(1, 6) if headers is METRIC_COLUMNS else (
            range(0, 4) if headers is FRONTIER_COLUMNS else ())
        items.append(rich_table(title, headers, rows, right=right, caption=caption))
    if not result.feasible:
        items.append("No policy meets the targets:\n" + result.message())
    elif written:
        items.append(f"best policy written to {written}")
    return render_rich(items)


def write_plot(result, path: Path) -> None:
    """Frontier (cost vs completion) with the single-model strategies as points."""
    import io

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CostsimError("--plot needs matplotlib: pip install 'costsim[plot]'",
                           path="--plot") from None
    from ..fsutil import atomic_write

    fig, ax = plt.subplots(figsize=(9, 6), dpi=110)
    fa = result.frontier_all
    if fa:
        ax.plot([p.completion_rate for p in fa], [p.cost_per_completed_task for p in fa],
                color="tab:blue", lw=1.2, marker=".", ms=3,
                label="Pareto frontier, cost vs completion (all searched policies)")
    fc = result.frontier_completion
    others = _targets(result, skip="min_completion")
    if fc and others:
        ax.plot([p.completion_rate for p in fc], [p.cost_per_completed_task for p in fc],
                color="tab:green", lw=1.5, marker=".", ms=4,
                label=f"Pareto frontier with {', '.join(others)}")
    for b in result.baselines:
        single = b.kind == "single"
        ax.scatter([b.completion_rate], [b.cost_per_completed_task],
                   marker="o" if single else "s", color="tab:gray" if single else "tab:orange",
                   zorder=3)
        ax.annotate(b.name, (b.completion_rate, b.cost_per_completed_task), fontsize=7,
                    xytext=(4, 2), textcoords="offset points")
    if result.best is not None:
        ax.scatter([result.best.completion_rate], [result.best.cost_per_completed_task],
                   marker="*", s=180, color="tab:red", zorder=4,
                   label=f"best meeting targets ({result.best_policy['name']})")
    ax.set_xlabel("completion rate")
    ax.set_ylabel("cost per completed task (USD)")
    ax.set_yscale("log")
    ax.set_title(f"{result.workload_name}: cost vs completion, {result.evaluated:,} policies")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write(path, buf.getvalue())

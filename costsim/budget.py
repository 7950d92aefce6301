"""Pre-purchase budgeting: what a month of N tasks costs at the median and at P90/P99, what to
buy from each provider, how many tasks a budget covers. The spread comes from the Monte Carlo
engine (:mod:`costsim.engine.montecarlo`); the expectations are exact (the analytic engine).

The spread includes everything that varies: which attempts succeed, how large each task is
(``variation``) and, when the workload gives ``tasks_per_month: {mean, cv}``, how many tasks a
month brings. Months are simulated task by task while that stays fast; beyond, from outcome
counts (exact without ``variation``; with it, each cell's month from its exact mean and
covariance), so 10^9 tasks a month takes seconds.

>>> from costsim.budget import budget
>>> r = budget(tasks=1500, confidence=0.9, budget_usd=2000)    # doctest: +SKIP
>>> r.expected, r.p90, r.per_provider, r.budget_tasks           # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from .api import (RESULT_VERSION, check_named, left_out_warning, load_inputs, parse_strategy,
                  price_warnings)
from .loader import policy_warnings
from .engine.analytic import evaluate
from .engine.compile import Strategy, compile_ladders
from .errors import CostsimError

DEFAULT_MONTHS = 10_000
MAX_SIMULATED_TASKS = 20_000_000    # tasks simulated one by one; beyond, outcome counts
MIN_AUTO_MONTHS = 1_000
HIST_BINS = 24


@dataclass
class ProviderBudget:
    provider: str
    expected: float          # exact: tasks x analytic spend per task with this provider
    credits: float           # the confidence quantile of the provider's monthly spend
    simulated_mean: float


@dataclass
class BudgetResult:
    strategy: str
    kind: str
    prices: str
    prices_as_of: str
    workload: str
    workload_name: str
    tasks: int                       # tasks per month (the mean when the volume varies)
    months: int                      # simulated months
    seed: int
    confidence: float
    spend_per_task: float            # analytic
    cost_per_completed_task: float   # analytic
    expected: float                  # exact expected monthly spend = tasks x spend_per_task
    simulated_mean: float
    simulated_stderr: float
    p50: float
    p90: float
    p99: float
    at_confidence: float             # the monthly total at `confidence`
    completed_expected: float        # tasks x completion rate (exact)
    completed_low: int               # the (1 - confidence) quantile of completed tasks
    per_provider: list[ProviderBudget]
    budget_usd: float | None = None
    budget_tasks: int | None = None  # tasks the budget covers at the confidence
    budget_method: str | None = None
    histogram: dict = field(default_factory=dict)     # {"edges": [...], "counts": [...]}
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    monthly_spend: object = None     # np.ndarray [months] (not in the JSON)
    strategy_chosen_by: str = "--strategy"
    tasks_cv: float | None = None    # month-to-month variation of the count (None: fixed)
    method: str = "tasks"            # how months were simulated (see montecarlo.simulate_months)

    def exceeds(self, usd: float) -> bool:
        """True when the spend at the confidence is above ``usd`` (the CI gate)."""
        return self.at_confidence > usd

    @property
    def low_percentile(self) -> float:
        return round(100.0 * (1.0 - self.confidence), 6)

    def to_dict(self) -> dict:
        return {
            "version": RESULT_VERSION,
            "strategy": {"name": self.strategy, "kind": self.kind,
                         "chosen_by": self.strategy_chosen_by},
            "prices": {"path": self.prices, "as_of": self.prices_as_of},
            "workload": {"path": self.workload, "name": self.workload_name},
            "tasks": self.tasks,
            "tasks_cv": self.tasks_cv,
            "confidence": self.confidence,
            "expected": self.expected,
            "p50": self.p50,
            "p90": self.p90,
            "p99": self.p99,
            "at_confidence": self.at_confidence,
            "per_task": {"spend": self.spend_per_task,
                         "cost_per_completed_task": self.cost_per_completed_task},
            "completed": {"expected": self.completed_expected, "low": self.completed_low,
                          "low_percentile": self.low_percentile},
            "per_provider": {p.provider: {"expected": p.expected, "credits": p.credits,
                                          "simulated_mean": p.simulated_mean}
                             for p in self.per_provider},
            "budget": (None if self.budget_usd is None else
                       {"usd": self.budget_usd, "tasks": self.budget_tasks,
                        "confidence": self.confidence, "method": self.budget_method}),
            "simulation": {"months": self.months, "seed": self.seed, "method": self.method,
                           "simulated_mean": self.simulated_mean,
                           "simulated_stderr": self.simulated_stderr},
            "histogram": self.histogram,
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }

    def plot(self, path: str | Path) -> None:
        """Histogram of the simulated monthly totals with the expectation and percentiles
        marked; needs matplotlib (``pip install 'costsim[plot]'``)."""
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            raise CostsimError("--plot needs matplotlib: pip install 'costsim[plot]'",
                               path="--plot") from None
        import io

        from .fsutil import atomic_write

        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
        ax.hist(self.monthly_spend, bins=60, color="#4c72b0", alpha=0.85)
        marks = [("expected", self.expected, "black", "-"), ("P50", self.p50, "#55a868", "--"),
                 ("P90", self.p90, "#dd8452", "--"), ("P99", self.p99, "#c44e52", "--")]
        if self.budget_usd is not None:
            marks.append(("budget", self.budget_usd, "#8172b3", ":"))
        for label, x, color, style in marks:
            ax.axvline(x, color=color, linestyle=style, linewidth=1.4,
                       label=f"{label} ${x:,.0f}")
        ax.set_xlabel(f"monthly spend, USD ({self.tasks:,} tasks)")
        ax.set_ylabel(f"simulated months (of {self.months:,})")
        ax.set_title(f"{self.strategy} on {self.workload_name}")
        ax.legend(fontsize=8)
        fig.tight_layout()
        buf = io.BytesIO()
        suffix = Path(path).suffix.lstrip(".").lower() or "png"
        try:
            fig.savefig(buf, format=suffix)
        except ValueError as exc:
            raise CostsimError(f"cannot write a plot as '{suffix}': {exc}", str(path)) from None
        finally:
            plt.close(fig)
        atomic_write(path, buf.getvalue())


def months_for(tasks: float, months: int | None = None, varied: bool = False) -> int:
    """The month count ``budget`` simulates for ``tasks`` per month (``months`` if given):
    10,000 months; with ``variation``, fewer (not below 1,000) while that keeps months small
    enough to simulate task by task (beyond, months come from outcome counts and 10,000 are
    cheap)."""
    if months is not None:
        return int(months)
    n = max(float(tasks), 1.0)
    if n * DEFAULT_MONTHS <= MAX_SIMULATED_TASKS or not varied:
        return DEFAULT_MONTHS
    if n * MIN_AUTO_MONTHS <= MAX_SIMULATED_TASKS:
        return max(MIN_AUTO_MONTHS, int(MAX_SIMULATED_TASKS // n))
    return DEFAULT_MONTHS


def cheapest_routed(table, policies, wl) -> Strategy:
    """The routed policy with the lowest analytic cost per completed task."""
    if not policies:
        raise CostsimError("no routing policy to choose from; pass --strategy single:MODEL or "
                           "--policy FILE", path="--strategy")
    best = None
    for p in policies:
        s = Strategy.routed(p)
        m = evaluate(compile_ladders(table, s, wl))
        key = (m.cost_per_completed_task, s.name)
        if best is None or key < best[0]:
            best = (key, s)
    return best[1]


def budget(prices=None, policies=None, workload=None, *, strategy: str | None = None,
           tasks: int | None = None, confidence: float = 0.9, budget_usd: float | None = None,
           seed: int = 0, months: int | None = None, threads: int | None = None,
           progress=None) -> BudgetResult:
    """Monthly spend distribution of one strategy (default: the cheapest routed policy).

    ``prices``/``workload``/``policies``: as :func:`costsim.api.compare`. ``tasks``: exactly this
    many tasks every month (default: the workload's ``tasks_per_month``, which may vary from
    month to month: ``{mean, cv}``). ``months``: simulated months (default 10,000; with
    ``variation``, fewer -- not below 1,000 -- while months are simulated task by task).
    ``progress``: called with the number of tasks each finished chunk simulated.
    """
    import numpy as np

    from .engine import montecarlo as mc
    from .engine.moments import task_spend_variance
    from .models import Volume

    if not 0.0 < confidence < 1.0:
        raise CostsimError(f"confidence must be between 0 and 1 (exclusive), got {confidence}",
                           path="--confidence")
    if tasks is not None and tasks < 1:
        raise CostsimError(f"tasks must be at least 1, got {tasks}", path="--tasks")
    if months is not None and months < 1:
        raise CostsimError(f"months must be at least 1, got {months}", path="--months")
    if budget_usd is not None and not (0 <= budget_usd < math.inf):
        raise CostsimError(f"budget must be a non-negative amount, got {budget_usd}",
                           path="--budget")
    left_out: list[tuple[str, str]] = []
    table, prices_path, wl, wl_path, pols = load_inputs(prices, policies, workload, left_out)
    check_named(strategy, left_out, table, wl)
    if strategy is None:
        strat = cheapest_routed(table, pols, wl)
        chosen_by = "cheapest routed policy"
    else:
        strat = parse_strategy(strategy, table, pols)
        chosen_by = "--strategy"
    volume = wl.tasks_per_month if tasks is None else int(tasks)
    if isinstance(volume, Volume):
        mean_tasks, cv = float(volume.mean), float(volume.cv)
    else:
        mean_tasks, cv = float(volume), None
    n_tasks = int(round(mean_tasks))

    L = compile_ladders(table, strat, wl)
    m = evaluate(L)
    varied = L.variation is not None
    auto_note = None
    if months is None:
        months = months_for(mean_tasks, None, varied)
        if months < DEFAULT_MONTHS:
            auto_note = (f"simulated {months:,} months instead of {DEFAULT_MONTHS:,} to keep the "
                         f"run near {MAX_SIMULATED_TASKS // 1_000_000}M tasks; --months sets it")
    plan = mc.make_plan(L)
    sim = mc.simulate_months(L, mean_tasks if cv is not None else n_tasks, months, seed,
                             volume_cv=cv, threads=threads, progress=progress, plan=plan)
    spend = sim.spend
    q = np.quantile(spend, [0.5, 0.9, 0.99, confidence])
    per_provider = []
    for prov, arr in sim.by_provider.items():
        exp = mean_tasks * m.spend_by_provider.get(prov, 0.0)
        if exp == 0.0 and not arr.any():
            continue
        per_provider.append(ProviderBudget(prov, exp, float(np.quantile(arr, confidence)),
                                           float(arr.mean())))
    per_provider.sort(key=lambda p: (-p.expected, p.provider))
    completed_low = int(np.quantile(sim.completed, 1.0 - confidence, method="inverted_cdf"))

    counts, edges = np.histogram(spend, bins=HIST_BINS)
    size = f"{n_tasks:,} tasks" if cv is None else \
        f"a varying number of tasks (mean {mean_tasks:,.0f}, cv {cv:g}, gamma-Poisson)"
    how = {"tasks": "every task simulated",
           "outcomes": "built from outcome counts drawn per month (exact)",
           "cells": "built per cell from outcome counts: cells with more than "
                    f"{mc.SMALL_CELL} tasks a month from their exact mean and covariance "
                    "(normal), smaller ones task by task"}[sim.method]
    notes = [
        f"P50/P90/P99 and credits come from {months:,} simulated months of {size} "
        f"(seed {seed}; {how}); 'expected' is exact (tasks x analytic spend per task).",
        "Per-provider credits are each provider's own quantile of its monthly spend; bought "
        "together they usually exceed the total at the same confidence, since providers rarely "
        "peak in the same month.",
    ] + ([auto_note] if auto_note else [])
    if varied:
        notes.append("Tasks differ in difficulty and size (the workload's variation): the "
                     "spread includes both.")
    res = BudgetResult(
        strategy=strat.name, kind=strat.kind, prices=prices_path,
        prices_as_of=str(table.as_of), workload=wl_path, workload_name=wl.name, tasks=n_tasks,
        months=int(months), seed=seed, confidence=confidence,
        spend_per_task=m.spend_per_task, cost_per_completed_task=m.cost_per_completed_task,
        expected=mean_tasks * m.spend_per_task, simulated_mean=float(spend.mean()),
        simulated_stderr=float(spend.std(ddof=1) / math.sqrt(months)) if months > 1 else math.nan,
        p50=float(q[0]), p90=float(q[1]), p99=float(q[2]), at_confidence=float(q[3]),
        completed_expected=mean_tasks * m.completion_rate, completed_low=completed_low,
        per_provider=per_provider,
        histogram={"edges": [float(x) for x in edges], "counts": [int(c) for c in counts]},
        warnings=(price_warnings(table) + left_out_warning(left_out)
                  + [w for p in pols for w in policy_warnings(p, wl)]),
        notes=notes, monthly_spend=spend,
        strategy_chosen_by=chosen_by, tasks_cv=cv, method=sim.method)

    if budget_usd is not None:
        # the exact per-task spread (the monthly one also holds the volume's)
        _, var_task = task_spend_variance(L)
        cov = mc.simulate_coverage(L, budget_usd, confidence, seed, runs=min(months, 10_000),
                                   threads=threads, progress=progress, plan=plan,
                                   spend_per_task=m.spend_per_task,
                                   spend_sd=math.sqrt(var_task))
        res.budget_usd = float(budget_usd)
        res.budget_tasks = cov.tasks
        res.budget_method = cov.method
        if cov.tasks is None:
            res.notes.append("the strategy spends nothing per task: any budget covers any "
                             "number of tasks")
        elif cov.method != "simulated":
            res.notes.append("the budget covers so many tasks that simulating them run by run "
                             "would be slow; the count uses the normal approximation (central "
                             "limit theorem), which is accurate at that size")
    return res

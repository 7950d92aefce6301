"""The Python API. The CLI only parses flags and renders what these functions return.

>>> import costsim
>>> result = costsim.compare()                 # bundled price table, policies and workload
>>> result.best().name, result.to_frame()      # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from . import paths
from .engine.analytic import Metrics, evaluate
from .engine.compile import CompileCache, Ladders, Strategy, compile_ladders
from .errors import CostsimError
from .loader import (check_policy_against, check_workload_against, load_policy, load_prices,
                     load_workload, policy_warnings)
from .models import Policy, PriceTable, Workload

RESULT_VERSION = 1


@dataclass
class StrategyResult:
    name: str
    kind: str
    spend_per_task: float
    completion_rate: float
    cost_per_completed_task: float
    defect_rate: float
    review_minutes: float
    expected_attempts: float
    expected_retries: float
    premium_share: float
    spend_by_model: dict[str, float]
    spend_by_provider: dict[str, float]
    tokens: dict[str, float]
    summary_calls: float
    models: list[str]
    source: str | None = None
    monthly_spend: float = 0.0            # spend_per_task x the workload's tasks per month
    savings: float | None = None          # per completed task vs `savings_vs`, a fraction
    savings_vs: str | None = None         # the baseline (None for the baseline itself)
    monthly_savings: float | None = None  # the baseline's monthly spend minus this one's
    pareto: bool = False
    same_as: str | None = None            # an identical strategy (same figures) listed first
    phases: list[dict] = field(default_factory=list)
    model_breakdown: list[dict] = field(default_factory=list)
    extra: dict = field(default_factory=dict)   # engine-specific (Monte Carlo percentiles ...)

    def to_dict(self, breakdown: bool = False) -> dict:
        d = asdict(self)
        extra = d.pop("extra")
        phases = d.pop("phases")
        model_rows = d.pop("model_breakdown")
        d.update(extra)
        if breakdown:
            d["breakdown"] = {"phases": phases, "models": model_rows}
        return d


@dataclass
class CompareResult:
    prices: str
    prices_as_of: str
    workload: str
    workload_name: str
    engine: str
    strategies: list[StrategyResult]
    warnings: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)
    tasks_per_month: float = 0.0
    baseline: str | None = None           # what savings are against
    baseline_chosen_by: str = ""          # "--baseline" or why the default was chosen

    def best(self) -> StrategyResult:
        return self.strategies[0]

    def get(self, name: str) -> StrategyResult:
        for s in self.strategies:
            if s.name == name:
                return s
        raise KeyError(name)

    def to_dict(self, breakdown: bool = False) -> dict:
        return {
            "version": RESULT_VERSION,
            "engine": self.engine,
            "prices": {"path": self.prices, "as_of": self.prices_as_of},
            "workload": {"path": self.workload, "name": self.workload_name,
                         "tasks_per_month": self.tasks_per_month},
            "baseline": {"strategy": self.baseline, "chosen_by": self.baseline_chosen_by},
            **({"settings": self.settings} if self.settings else {}),
            "warnings": list(self.warnings),
            "strategies": [s.to_dict(breakdown) for s in self.strategies],
        }

    def to_frame(self):
        """One row per strategy (pandas is imported here, not at start-up)."""
        import pandas as pd

        rows = []
        for s in self.strategies:
            d = s.to_dict()
            for k in ("spend_by_model", "spend_by_provider", "tokens", "models"):
                d.pop(k)
            d.update({f"tokens_{k}": v for k, v in s.tokens.items()})
            rows.append(d)
        return pd.DataFrame(rows).set_index("name")


# --- loading ---------------------------------------------------------------------------------

def _as_prices(prices) -> tuple[PriceTable, str]:
    if isinstance(prices, PriceTable):
        return prices, (prices.doc.file if prices.doc else "<price table>")
    path = paths.resolve_prices_path(prices)
    return load_prices(path), str(path)


def _as_workload(workload) -> tuple[Workload, str]:
    if isinstance(workload, Workload):
        return workload, (workload.doc.file if workload.doc else "<workload>")
    path = paths.resolve_workload_path(workload)
    return load_workload(path), str(path)


def _as_policies(policies) -> list[Policy]:
    if policies is None:
        policies = paths.resolve_policy_paths(())
    if isinstance(policies, (str, Path, Policy)):
        policies = [policies]
    out: list[Policy] = []
    for p in policies:       # a path, a bundled name or a folder of policies
        out += [p] if isinstance(p, Policy) else [load_policy(x) for x in
                                                   paths.resolve_policy_paths([p])]
    seen: dict[str, Policy] = {}
    for p in out:
        if p.name in seen:
            where = seen[p.name].doc.file if seen[p.name].doc else "another policy"
            raise p.error(("name",), f"two policies are named '{p.name}' (also in {where})")
        seen[p.name] = p
    return out


def load_inputs(prices=None, policies=None, workload=None, notes: list | None = None):
    """Load and cross-check the three inputs (paths, models or None for the defaults).

    With ``policies`` None (the bundled policies, nobody asked for them by name), a bundled
    policy that cannot run with the price table or workload (your own table, without the
    models it names) is left out, and ``notes`` (when given) gets (its name, why); a policy
    given by name must run, or it is an error."""
    table, prices_path = _as_prices(prices)
    wl, wl_path = _as_workload(workload)
    pols = _as_policies(policies)
    check_workload_against(wl, table)
    kept = []
    for p in pols:
        try:
            check_policy_against(p, table, wl)
        except CostsimError as exc:
            if policies is not None:
                raise
            if notes is not None:
                notes.append((p.name, exc.message))
            continue
        kept.append(p)
    return table, prices_path, wl, wl_path, kept


def strategies_for(table: PriceTable, policies: Sequence[Policy],
                   models: Iterable[str] = (), pareto: Iterable[float] = ()) -> list[Strategy]:
    """Each routed policy, then pareto:SCORE for every ``pareto`` threshold, then single:M for
    every model the policies name and every --model."""
    out = [Strategy.routed(p) for p in policies]
    out += [Strategy.pareto(s, table) for s in dict.fromkeys(pareto)]
    singles: list[str] = []
    for p in policies:
        for m in Strategy.routed(p).models():
            singles.append(m)
    for m in models:
        if m not in table.models:
            raise CostsimError(f"unknown model '{m}' (not in the price table; "
                               f"see `costsim price-table show`)", path="--model")
        singles.append(m)
    for m in dict.fromkeys(singles):
        out.append(Strategy.single(m))
    return out


def parse_strategy(name: str, table: PriceTable, policies: Sequence[Policy]) -> Strategy:
    """``single:MODEL``, ``pareto:SCORE`` or the name of one of ``policies``."""
    if name.startswith("pareto:"):
        raw = name.split(":", 1)[1]
        try:
            score = float(raw)
        except ValueError:
            raise CostsimError(f"'{raw}' is not a number (pareto:SCORE, e.g. pareto:70)",
                               path="--strategy") from None
        return Strategy.pareto(score, table)
    if name.startswith("single:"):
        m = name.split(":", 1)[1]
        if m not in table.models:
            raise CostsimError(f"unknown model '{m}' (not in the price table)", path="--strategy")
        return Strategy.single(m)
    for p in policies:
        if p.name == name:
            return Strategy.routed(p)
    known = ", ".join([p.name for p in policies] + ["single:MODEL", "pareto:SCORE"])
    raise CostsimError(f"unknown strategy '{name}' (known: {known})", path="--strategy")


# --- evaluation ------------------------------------------------------------------------------

def result_from_metrics(strategy: Strategy, m: Metrics, ladders: Ladders) -> StrategyResult:
    src = None
    if strategy.policy is not None and strategy.policy.doc is not None:
        src = strategy.policy.doc.file
    return StrategyResult(
        name=strategy.name, kind=strategy.kind, spend_per_task=m.spend_per_task,
        completion_rate=m.completion_rate, cost_per_completed_task=m.cost_per_completed_task,
        defect_rate=m.defect_rate, review_minutes=m.review_minutes,
        expected_attempts=m.expected_attempts, expected_retries=m.expected_retries,
        premium_share=m.premium_share, spend_by_model=m.spend_by_model,
        spend_by_provider=m.spend_by_provider,
        tokens={k: v for k, v in m.tokens.items() if k != "summary_calls"},
        summary_calls=m.tokens.get("summary_calls", 0.0),
        models=strategy.models(), source=src, phases=m.phases, model_breakdown=m.models)


def evaluate_strategy(table: PriceTable, strategy: Strategy, wl: Workload) -> StrategyResult:
    L = compile_ladders(table, strategy, wl)
    return result_from_metrics(strategy, evaluate(L), L)


TIER_RANK = {"budget": 0, "midrange": 1, "premium": 2}

#: Relative tolerance under which two strategies' figures count as the same.
SAME = 1e-9


def default_baseline(table: PriceTable, policies: Sequence[Policy],
                     models: Iterable[str] = ()) -> tuple[str | None, str]:
    """The single model savings are measured against by default, and why.

    The model of the highest price-table tier that the policies name in their tiers (the
    "premium for everything" a team starts from); among several, the one most policies put in
    their top tier, then the first by id. Strategies added with --model or --pareto do not
    move it. Without policies: the same rule over the --model models. None when neither exists.
    """
    named: list[str] = []
    top: dict[str, int] = {}
    for p in policies:
        ids = list(p.tiers.values())
        named += ids
        top[ids[-1]] = top.get(ids[-1], 0) + 1
    why = "the model of the highest tier the policies name"
    if not named:
        named = [m for m in models if m in table.models]
        why = "the model of the highest tier among --model"
    named = [m for m in dict.fromkeys(named) if m in table.models]
    if not named:
        return None, ""
    best = min(named, key=lambda m: (-TIER_RANK.get(table.models[m].tier, -1), -top.get(m, 0), m))
    return f"single:{best}", why


def _close(a: float | None, b: float | None) -> bool:
    if a == b:
        return True
    if a is None or b is None:
        return False
    if math.isinf(a) or math.isinf(b):
        return False
    return abs(a - b) <= SAME * max(abs(a), abs(b), 1e-300)


def _same_figures(a: StrategyResult, b: StrategyResult) -> bool:
    return (_close(a.cost_per_completed_task, b.cost_per_completed_task)
            and _close(a.completion_rate, b.completion_rate)
            and _close(a.defect_rate, b.defect_rate))


_KIND_ORDER = {"single": 0, "routed": 1, "pareto": 2}


def mark_savings_and_pareto(results: list[StrategyResult], baseline: str | None) -> None:
    """Savings against ``baseline`` (per completed task and per month), Pareto marks, and
    ``same_as`` for strategies whose figures equal another's.

    The baseline itself gets no savings (None, not 0). A strategy is Pareto-efficient when no
    other is at once no dearer per completed task, completes no less often and ships no more
    defects, and better in one of them. Strategies with the same figures (``pareto:70`` that
    always picks the model ``single:M`` uses) are one point: the simplest (single, then routed,
    then pareto, then by name) carries the mark, the others name it in ``same_as``.
    """
    ref = next((r for r in results if r.name == baseline), None)
    for r in results:
        r.savings = r.savings_vs = r.monthly_savings = None
        if ref is None or r is ref:
            continue
        r.savings_vs = ref.name
        r.monthly_savings = ref.monthly_spend - r.monthly_spend
        c0 = ref.cost_per_completed_task
        if 0 < c0 < math.inf and r.cost_per_completed_task < math.inf:
            r.savings = 1.0 - r.cost_per_completed_task / c0

    def better(o, r):
        le_cost = o.cost_per_completed_task <= r.cost_per_completed_task or _close(
            o.cost_per_completed_task, r.cost_per_completed_task)
        ge_comp = o.completion_rate >= r.completion_rate or _close(o.completion_rate,
                                                                   r.completion_rate)
        # an engine that cannot tell defects (replay) leaves them None: no difference
        le_def = (o.defect_rate is None or r.defect_rate is None
                  or o.defect_rate <= r.defect_rate or _close(o.defect_rate, r.defect_rate))
        return le_cost and ge_comp and le_def and not _same_figures(o, r)

    order = sorted(results, key=lambda r: (_KIND_ORDER.get(r.kind, 9), r.name))
    for r in results:
        r.same_as = None
        first = next(o for o in order if _same_figures(o, r))
        if first is not r:
            r.same_as = first.name
        # A strategy that never completes a task is no trade-off: it is never efficient.
        r.pareto = bool(r.completion_rate > 0) and r.same_as is None and not any(
            better(o, r) for o in results if o is not r)


def choose_baseline(table: PriceTable, pols, models, strategies: list,
                    baseline: str | None) -> tuple[str, str]:
    """``(name, chosen_by)`` of the strategy savings are against: ``baseline`` (added to
    ``strategies`` if it is not there) or :func:`default_baseline`."""
    if baseline is None:
        return default_baseline(table, pols, models)
    base = parse_strategy(baseline, table, pols)
    if base.name not in {s.name for s in strategies}:
        strategies.append(base)
    return base.name, "--baseline"


ENGINES = ("analytic", "montecarlo", "replay")
PARALLEL_FROM = 16            # strategies from which compare evaluates on a second thread


def _evaluated(table, wl, strategies, cache: CompileCache, threads: bool = True):
    """``(strategy, ladders, metrics)`` of every strategy, in order. With many strategies and
    more than one core, evaluations also run on a worker thread (NumPy releases the GIL in its
    array loops): this thread compiles every strategy (compiling shares ``cache``) and hands
    the evaluation to the worker while fewer than two of its evaluations are unfinished, else
    evaluates it itself. So two threads stay busy on two cores (a third, compiling beside two
    evaluating, cost ~10-15% more CPU time in cache and GIL contention). The numbers do not
    depend on it: each evaluation is on its own."""
    import os

    workers = min(2, os.cpu_count() or 1)
    if not threads or workers < 2 or len(strategies) < PARALLEL_FROM:
        for s in strategies:
            L = compile_ladders(table, s, wl, cache=cache)
            yield s, L, evaluate(L)
        return
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    # BLAS on one thread meanwhile: its small products (node sums) beside two busy threads
    # would otherwise start OpenBLAS's spinning workers (see search/tables.py's _bmm)
    helpers = workers - 1
    with threadpool_limits(limits=1, user_api="blas"), \
            ThreadPoolExecutor(max_workers=helpers) as pool:
        pending: deque = deque()
        for s in strategies:
            L = compile_ladders(table, s, wl, cache=cache)
            if sum(not f.done() for _, _, f in pending) < 2 * helpers:
                f = pool.submit(evaluate, L)
            else:
                f = Future()
                f.set_result(evaluate(L))
            pending.append((s, L, f))
            while pending and pending[0][2].done():
                s0, L0, f0 = pending.popleft()
                yield s0, L0, f0.result()
        # the last ones: what the worker has not started is evaluated here meanwhile
        for i in range(len(pending) - 1, -1, -1):
            s0, L0, f0 = pending[i]
            if f0.cancel():
                f0 = Future()
                f0.set_result(evaluate(L0))
                pending[i] = (s0, L0, f0)
        while pending:
            s0, L0, f = pending.popleft()
            yield s0, L0, f.result()


def compare(prices=None, policies=None, workload=None, models: Iterable[str] = (), *,
            engine: str = "analytic", samples: int = 400_000, seed: int = 0,
            pareto: Iterable[float] = (), baseline: str | None = None, log=None,
            bootstrap: int = 1000) -> CompareResult:
    """Every strategy side by side, sorted by cost per completed task.

    ``prices``/``workload``: a path, an already-loaded model, or None for the defaults;
    ``policies``: a list of paths or Policy models, or None for the bundled policies;
    ``models``: extra ``single:M`` strategies; ``pareto``: coding-score thresholds, each adds a
    ``pareto:SCORE`` baseline (every attempt on the cheapest model scoring at least SCORE);
    ``baseline``: the strategy savings are against (a policy name, ``single:M`` or
    ``pareto:SCORE``; added if not compared already); default :func:`default_baseline`.
    ``engine="replay"`` evaluates the strategies on the recorded outcomes of the runs log
    ``log`` instead (:func:`costsim.replay.compare_replay`; ``bootstrap`` resamples, ``seed``).
    """
    if engine not in ENGINES:
        raise CostsimError(f"unknown engine '{engine}' (engines: {', '.join(ENGINES)})",
                           path="--engine")
    if (engine == "replay") != (log is not None):
        raise CostsimError("--engine replay and --log LOG go together", path="--log")
    if engine == "replay":
        from .replay import compare_replay

        return compare_replay(log, prices, policies, workload, models, seed=seed,
                              bootstrap=bootstrap, pareto=pareto, baseline=baseline)
    if samples < 1:
        raise CostsimError(f"must be at least 1, got {samples}", path="--samples")
    left_out: list[tuple[str, str]] = []
    table, prices_path, wl, wl_path, pols = load_inputs(prices, policies, workload, left_out)
    strategies = strategies_for(table, pols, models, pareto)
    if not strategies:
        why = (": no bundled policy runs with this price table (they name models it lacks)"
               if policies is None else "")
        raise CostsimError(f"nothing to compare{why}; give --policy or --model",
                           path="--policy")
    check_named(baseline, left_out, table, wl)
    base_name, chosen_by = choose_baseline(table, pols, models, strategies, baseline)
    results = []
    settings: dict = {}
    cache = CompileCache(table, wl, [m for s in strategies for m in s.models()])
    for s, L, m in _evaluated(table, wl, strategies, cache, threads=engine == "analytic"):
        r = result_from_metrics(s, m, L)
        if engine == "montecarlo":
            from .engine.montecarlo import apply_montecarlo

            apply_montecarlo(r, L, samples=samples, seed=seed)
            settings = {"samples": samples, "seed": seed}
        r.monthly_spend = r.spend_per_task * wl.monthly_tasks
        results.append(r)
    results.sort(key=lambda r: (r.cost_per_completed_task, r.name))
    mark_savings_and_pareto(results, base_name)
    warnings = (price_warnings(table) + left_out_warning(left_out)
                + [w for p in pols for w in policy_warnings(p, wl)])
    return CompareResult(prices=prices_path, prices_as_of=str(table.as_of), workload=wl_path,
                         workload_name=wl.name, engine=engine, strategies=results,
                         warnings=warnings + input_warnings(table, wl, strategies, results),
                         settings=settings, tasks_per_month=wl.monthly_tasks,
                         baseline=base_name, baseline_chosen_by=chosen_by)


def check_named(name: str | None, left_out: list, table: PriceTable, wl: Workload) -> None:
    """A bundled policy :func:`load_inputs` left out but asked for by name (``--baseline``,
    budget's ``--strategy``) must run, as one given with ``--policy``: the error that left it
    out (its file and line), rather than 'unknown strategy'."""
    if name is None or name not in {n for n, _ in left_out}:
        return
    for p in _as_policies(None):
        if p.name == name:
            check_policy_against(p, table, wl)


def left_out_warning(left_out: list) -> list[str]:
    """One line for the bundled policies :func:`load_inputs` left out, with the first reason."""
    if not left_out:
        return []
    name, why = left_out[0]
    return [f"{len(left_out)} bundled polic{'y' if len(left_out) == 1 else 'ies'} left out, "
            f"they cannot run with this price table or workload "
            f"({', '.join(n for n, _ in left_out)}; e.g. {name}: {why}); --policy FILE "
            f"compares your own"]


def input_warnings(table: PriceTable, wl: Workload, strategies: Sequence[Strategy],
                   results: Sequence[StrategyResult] = ()) -> list[str]:
    """Well-formed nonsense in the inputs a run uses (costsim.checks): one line each."""
    from .checks import price_table_warnings, result_warnings, workload_warnings

    used = {m for s in strategies for m in s.models()}
    return (price_table_warnings(table, used) + workload_warnings(wl)
            + result_warnings(list(results)))


def price_warnings(table: PriceTable) -> list[str]:
    from .pricetable import stale_warning

    w = stale_warning(table)
    return [w] if w else []

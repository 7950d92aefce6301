"""The Python API. The CLI only parses flags and renders what these functions return.

>>> import costsim
>>> result = costsim.compare()                 # bundled price table, policies and workload
>>> result.best().name, result.to_frame()      # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from . import paths
from .engine.analytic import Metrics, evaluate
from .engine.compile import Ladders, Strategy, compile_ladders
from .errors import CostsimError
from .loader import (check_policy_against, check_workload_against, load_policy, load_prices,
                     load_workload)
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
    savings: float | None = None          # vs `savings_vs`, as a fraction of its cost
    savings_vs: str | None = None
    pareto: bool = False
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
            "workload": {"path": self.workload, "name": self.workload_name},
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
    out = [p if isinstance(p, Policy) else load_policy(p) for p in policies]
    seen: dict[str, Policy] = {}
    for p in out:
        if p.name in seen:
            where = seen[p.name].doc.file if seen[p.name].doc else "another policy"
            raise p.error(("name",), f"two policies are named '{p.name}' (also in {where})")
        seen[p.name] = p
    return out


def load_inputs(prices=None, policies=None, workload=None):
    """Load and cross-check the three inputs (paths, models or None for the defaults)."""
    table, prices_path = _as_prices(prices)
    wl, wl_path = _as_workload(workload)
    pols = _as_policies(policies)
    check_workload_against(wl, table)
    for p in pols:
        check_policy_against(p, table, wl)
    return table, prices_path, wl, wl_path, pols


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


def mark_savings_and_pareto(results: list[StrategyResult]) -> None:
    singles = [r for r in results if r.kind == "single"]
    eps = 1e-12
    for r in results:
        ok = [s for s in singles if s.completion_rate >= r.completion_rate - eps]
        if ok:
            ref = min(ok, key=lambda s: s.cost_per_completed_task)
            if ref.cost_per_completed_task > 0 and ref.cost_per_completed_task != float("inf"):
                r.savings_vs = ref.name
                r.savings = 1.0 - r.cost_per_completed_task / ref.cost_per_completed_task
    for r in results:
        # A strategy that never completes a task is no trade-off: it is never efficient.
        r.pareto = r.completion_rate > 0 and not any(
            o is not r
            and o.cost_per_completed_task <= r.cost_per_completed_task
            and o.completion_rate >= r.completion_rate
            and o.defect_rate <= r.defect_rate
            and (o.cost_per_completed_task < r.cost_per_completed_task
                 or o.completion_rate > r.completion_rate or o.defect_rate < r.defect_rate)
            for o in results)


ENGINES = ("analytic", "montecarlo")


def compare(prices=None, policies=None, workload=None, models: Iterable[str] = (), *,
            engine: str = "analytic", samples: int = 400_000, seed: int = 0,
            pareto: Iterable[float] = ()) -> CompareResult:
    """Every strategy side by side, sorted by cost per completed task.

    ``prices``/``workload``: a path, an already-loaded model, or None for the defaults;
    ``policies``: a list of paths or Policy models, or None for the bundled policies;
    ``models``: extra ``single:M`` strategies; ``pareto``: coding-score thresholds, each adds a
    ``pareto:SCORE`` baseline (every attempt on the cheapest model scoring at least SCORE).
    """
    if engine not in ENGINES:
        raise CostsimError(f"unknown engine '{engine}' (engines: {', '.join(ENGINES)})",
                           path="--engine")
    table, prices_path, wl, wl_path, pols = load_inputs(prices, policies, workload)
    strategies = strategies_for(table, pols, models, pareto)
    results = []
    settings: dict = {}
    for s in strategies:
        L = compile_ladders(table, s, wl)
        r = result_from_metrics(s, evaluate(L), L)
        if engine == "montecarlo":
            from .engine.montecarlo import apply_montecarlo

            apply_montecarlo(r, L, samples=samples, seed=seed)
            settings = {"samples": samples, "seed": seed}
        results.append(r)
    results.sort(key=lambda r: (r.cost_per_completed_task, r.name))
    mark_savings_and_pareto(results)
    return CompareResult(prices=prices_path, prices_as_of=str(table.as_of), workload=wl_path,
                         workload_name=wl.name, engine=engine, strategies=results,
                         warnings=price_warnings(table) + input_warnings(table, wl, strategies,
                                                                         results),
                         settings=settings)


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

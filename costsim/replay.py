"""``compare --engine replay``: the strategies evaluated on a runs log's recorded outcomes.

The engine is :mod:`costsim.engine.replay`; this module loads the inputs, picks the strategies
and turns the engine's figures into the :class:`costsim.api.CompareResult` every renderer reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from .api import (CompareResult, StrategyResult, check_named, choose_baseline,
                  left_out_warning, load_inputs, mark_savings_and_pareto, price_warnings,
                  strategies_for)
from .loader import policy_warnings
from .engine.compile import Strategy
from .engine.replay import (DEFAULT_BOOTSTRAP, LEVEL, ReplayMetrics, check_bootstrap,
                            max_attempts, prepare, replay_all)
from .errors import CostsimError


def result_from_replay(strategy: Strategy, m: ReplayMetrics, tiers: dict[str, str],
                       providers: dict[str, str]) -> StrategyResult:
    """A StrategyResult of replayed figures. Defects and review minutes are not replayed (None);
    spend by provider and the premium share use the price table's entries where the log's
    models have one."""
    by_provider: dict[str, float] = {}
    for mid, v in m.spend_by_model.items():
        prov = providers.get(mid, "unknown")
        by_provider[prov] = by_provider.get(prov, 0.0) + v
    premium = sum(v for mid, v in m.spend_by_model.items() if tiers.get(mid) == "premium")
    models = []
    for row in m.models:
        models.append({**row, "provider": providers.get(row["model"], "unknown"),
                       "tier": tiers.get(row["model"], "-")})
    src = strategy.policy.doc.file if strategy.policy is not None and strategy.policy.doc else None
    r = StrategyResult(
        name=strategy.name, kind=strategy.kind, spend_per_task=m.spend_per_task,
        completion_rate=m.completion_rate, cost_per_completed_task=m.cost_per_completed_task,
        defect_rate=None, review_minutes=None, expected_attempts=m.expected_attempts,
        expected_retries=m.expected_retries,
        premium_share=premium / m.spend_per_task if m.spend_per_task > 0 else 0.0,
        spend_by_model=dict(m.spend_by_model), spend_by_provider=by_provider, tokens=m.tokens,
        summary_calls=m.summary_calls, models=strategy.models(), source=src, phases=m.phases,
        model_breakdown=models)
    r.extra["replay"] = {
        "tasks": m.tasks, "covered": m.covered, "coverage": m.coverage,
        "left_out": [{"phase": x.phase, "model": x.model, "missing": x.what, "tasks": x.tasks}
                     for x in m.lacks],
        "level": LEVEL, "intervals": m.intervals, "cost_percentiles": m.cost_percentiles,
    }
    return r


def compare_replay(log, prices=None, policies=None, workload=None, models: Iterable[str] = (),
                   *, seed: int = 0, bootstrap: int = DEFAULT_BOOTSTRAP,
                   pareto: Iterable[float] = (), baseline: str | None = None) -> CompareResult:
    """Replay every strategy (each routed policy, single:M for every model the policies name,
    every ``models`` entry and every model of the log that the price table knows) on ``log``.

    ``max_attempts`` comes from ``workload`` when one is given, else from the log. A strategy
    the log cannot cover at all is left out with a warning. Savings are against ``baseline``
    (default: :func:`costsim.api.default_baseline`) where it was replayed on the same tasks."""
    from .engine.montecarlo import check_seed
    from .logs.attempts import read_attempts

    if list(pareto):
        raise CostsimError("pareto:SCORE strategies cannot be replayed (they pick models by "
                           "token counts the log does not carry per strategy)", path="--pareto")
    seed = check_seed(seed)
    bootstrap = check_bootstrap(bootstrap)
    left_out: list[tuple[str, str]] = []
    table, prices_path, wl, wl_path, pols = load_inputs(prices, policies, workload, left_out)
    records = read_attempts(Path(log), table)
    rlog = prepare(records)
    in_log = [m for m in rlog.model_names if m in table.models]
    strategies = strategies_for(table, pols, list(models) + in_log)
    check_named(baseline, left_out, table, wl)
    base_name, chosen_by = choose_baseline(table, pols, models, strategies, baseline)
    figures = replay_all(rlog, strategies, wl, explicit_workload=workload is not None,
                         resamples=bootstrap, seed=seed)
    tiers = {mid: mp.tier for mid, mp in table.models.items()}
    providers = {mid: mp.provider for mid, mp in table.models.items()}
    warnings = (price_warnings(table) + left_out_warning(left_out)
                + [w for p in pols for w in policy_warnings(p, wl)])
    results, masks = [], {}
    for s, m in zip(strategies, figures):
        if m.covered == 0:
            need = m.lacks[0] if m.lacks else None
            why = (f": no record of {need.model} on {need.phase}" if need else "")
            warnings.append(f"{s.name} left out: the log covers none of its tasks{why}")
            continue
        r = result_from_replay(s, m, tiers, providers)
        r.monthly_spend = r.spend_per_task * wl.monthly_tasks
        results.append(r)
        masks[s.name] = m.covered_mask
    if not results:
        raise CostsimError(f"no strategy can be replayed on this log (its models: "
                           f"{', '.join(rlog.model_names[:8])}); name them with --model or in "
                           f"a --policy", str(log))
    if rlog.priced_rows:
        warnings.append(f"{rlog.priced_rows:,} recorded attempts have no cost_usd: priced from "
                        f"the price table {prices_path}")
    if not rlog.has_signals and any(s.policy is not None and s.policy.signals
                                    for s in strategies):
        warnings.append("the log has no signals column: replayed as if no task carried a signal")
    results.sort(key=lambda r: (r.cost_per_completed_task, r.name))
    if base_name not in masks:
        base_name = None
    mark_savings_and_pareto(results, base_name)
    for r in results:     # savings only against a strategy replayed on the same tasks
        if r.savings_vs is not None and not np.array_equal(masks[r.name], masks[r.savings_vs]):
            r.savings = r.monthly_savings = None
    K = max_attempts(rlog, wl if workload is not None else None)
    lo, hi = int(K.min()), int(K.max())
    span = f"{lo}" if lo == hi else f"{lo}-{hi}"
    attempts = {"from": "workload" if workload is not None else "log", "min": lo, "max": hi,
                "text": (f"{span} (the workload's)" if workload is not None else
                         f"{span} (the most the log records; set it with --workload)")}
    return CompareResult(
        prices=prices_path, prices_as_of=str(table.as_of), workload=wl_path,
        workload_name=wl.name, engine="replay", strategies=results, warnings=warnings,
        tasks_per_month=wl.monthly_tasks, baseline=base_name, baseline_chosen_by=chosen_by,
        settings={"log": str(log), "tasks": rlog.n_tasks, "runs": len(rlog.run_names),
                  "bootstrap": bootstrap, "seed": seed, "level": LEVEL,
                  "max_attempts": attempts})

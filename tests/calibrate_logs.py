"""Runs logs whose answers are known by construction (for tests/test_calibrate*.py)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

FIXTURES = Path(__file__).parent / "fixtures"
CAL_PRICES = FIXTURES / "calibrate_prices.yaml"


def slug(name: str) -> str:
    """Aider model name -> the id used in calibrate_prices.yaml."""
    s = re.sub(r"[^a-z0-9.]+", "-", name.lower()).strip("-")
    return s


def aider_rows() -> list[dict]:
    return yaml.safe_load((FIXTURES / "aider_polyglot_excerpt.yml").read_text())


# Tokens of every attempt in the priced variant: 12k input of which 3k cached, 1.5k output.
TOKENS = (12_000, 3_000, 1_500)


def attempt_cost(prices: dict, model: str) -> float:
    """input_tokens counts cached input too: 9k at input, 3k at cache_read, 1.5k at output."""
    p = prices["models"][model]
    i, c, o = TOKENS
    return ((i - c) * p["input"] + c * p.get("cache_read", p["input"]) + o * p["output"]) / 1e6


def aider_log(with_cost: bool, seed: int = 0) -> pd.DataFrame:
    """Each leaderboard row becomes test_cases tasks of one model: pass_num_1 pass at the first
    try; the others get a second try, of which pass_num_2 - pass_num_1 pass. Rows shuffled."""
    out = []
    for r in aider_rows():
        m = slug(r["model"])
        n, n1, n2 = r["test_cases"], r["pass_num_1"], r["pass_num_2"]
        ids = np.array([f"{m}/{k}" for k in range(n)])
        first_ok = np.arange(n) < n1
        second = ~first_ok
        second_ok = (np.arange(n) >= n1) & (np.arange(n) < n2)
        attempts = n + second.sum()
        cost = (r["total_cost"] or 0.0) / attempts
        a1 = pd.DataFrame({"task_id": ids, "attempt": 1, "success": first_ok})
        a2 = pd.DataFrame({"task_id": ids[second], "attempt": 2, "success": second_ok[second]})
        d = pd.concat([a1, a2])
        d["model"] = m
        if with_cost:
            d["cost_usd"] = cost
        out.append(d)
    df = pd.concat(out, ignore_index=True)
    df["task_type"] = "exercise"
    df["phase"] = "implement"
    df["input_tokens"], df["cached_input_tokens"], df["output_tokens"] = TOKENS
    df = df.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    cols = ["task_id", "task_type", "phase", "attempt", "model", "input_tokens",
            "cached_input_tokens", "output_tokens", "success"] + (["cost_usd"] if with_cost else [])
    return df[cols]


def _phase_rows(task, ttype, phase, model, outcomes, tokens=(2000, 0, 500), **extra):
    rows = []
    for a, ok in enumerate(outcomes, start=1):
        rows.append({"task_id": task, "task_type": ttype, "phase": phase, "attempt": a,
                     "model": model, "input_tokens": tokens[0], "cached_input_tokens": tokens[1],
                     "output_tokens": tokens[2], "success": ok, **extra})
    return rows


def routed_log(n: int = 200) -> pd.DataFrame:
    """Two task types, deterministic outcomes.

    bugfix: search on `cheap` (first try always succeeds); implement on `cheap` succeeds at the
    first try for 3 tasks in 10 (else: second try succeeds for half of those, the rest escalate to
    `mid` at attempt 3 and succeed); review on `top` always succeeds.
    docs: the docs phase starts on `top` for 7 tasks in 10 and on `mid` for 3 in 10; both succeed
    at the first try for 9 in 10 and at the second try otherwise. So `top` adds nothing on docs.
    """
    rows = []
    for k in range(n):
        t = f"b{k}"
        rows += _phase_rows(t, "bugfix", "search", "cheap", [True])
        if k % 10 < 3:
            rows += _phase_rows(t, "bugfix", "implement", "cheap", [True])
        elif k % 2 == 0:
            rows += _phase_rows(t, "bugfix", "implement", "cheap", [False, True])
        else:
            rows += _phase_rows(t, "bugfix", "implement", "cheap", [False, False])
            rows += [dict(r, attempt=3) for r in
                     _phase_rows(t, "bugfix", "implement", "mid", [True])]
        rows += _phase_rows(t, "bugfix", "review", "top", [True])
    for k in range(n):
        t = f"d{k}"
        model = "top" if k % 10 < 7 else "mid"
        outcome = [True] if (k // 10) % 10 != 9 else [False, True]
        rows += _phase_rows(t, "docs", "docs", model, outcome, tokens=(1000, 0, 800))
    return pd.DataFrame(rows)


# --- round trips: simulate a log with tests/logsim.py, calibrate it, compare --------------------

ROOT = Path(__file__).parent.parent
PRICES = ROOT / "pricing" / "default.yaml"
BUNDLED_POLICIES = sorted((ROOT / "policies").glob("*.yaml"))
CAL_FIXTURES = FIXTURES / "calibrate"

# The thresholds: the log's own policy, then every other strategy.
OWN = {"cost": 0.03, "completion": 0.005, "defect_rel": 0.15, "defect_abs": 0.003}
OTHER = {"cost": 0.05, "completion": 0.01}


def roundtrip(tmp_path, workload, policy, *, rows="call", tasks=10_000, seed=0,
              with_policy=False, single_models=None, policies=None, fmt="csv", **sim):
    """Simulate ``tasks`` tasks of ``workload`` under ``policy``, calibrate the log, write the
    fitted workload and the inferred policy, and compare every strategy on the fitted workload
    with the same strategy on the true one (the engine on the true files is the reference: it is
    checked against tests/reference_model.py). ``policy`` may be a list of strategies (policy
    files and ``single:MODEL``), one run each (``assign="split"``: an A/B log); every one of them
    is then "own". Returns (result, rows, paths)."""
    from logsim import simulate_log, write_log

    from costsim.api import compare
    from costsim.calibrate import calibrate
    from costsim.loader import load_policy

    df = simulate_log(PRICES, workload, policy, tasks=tasks, seed=seed, rows=rows, **sim)
    log = tmp_path / f"runs.{fmt}"
    write_log(df, log)
    res = calibrate(log, prices=PRICES, policies=[policy] if with_policy else None)
    fitted = tmp_path / "fitted.yaml"
    res.write_workload(fitted)
    inferred = tmp_path / "inferred.yaml"
    if res.policy_data is not None:
        res.write_policy(inferred)
    strategies = list(policy) if isinstance(policy, (list, tuple)) else [policy]
    singles = [str(s).split(":", 1)[1] for s in strategies if str(s).startswith("single:")]
    owned = [Path(p) for p in strategies if not str(p).startswith("single:")]
    own_pols = [load_policy(p) for p in owned]
    own_names = {p.name for p in own_pols} | {f"single:{m}" for m in singles}
    pols = [Path(p) for p in (policies if policies is not None else BUNDLED_POLICIES)]
    for p in owned:
        if p.resolve() not in {q.resolve() for q in pols}:
            pols.append(p)
    models = list(dict.fromkeys(single_models if single_models is not None
                                else [m for p in own_pols for m in p.tiers.values()] + singles))
    true = compare(prices=PRICES, policies=pols, workload=workload, models=models)
    fit = compare(prices=PRICES, policies=pols, workload=fitted, models=models)
    out = []
    for s in true.strategies:
        f = fit.get(s.name)
        out.append({"name": s.name, "own": s.name in own_names,
                    "cost": f.cost_per_completed_task / s.cost_per_completed_task - 1,
                    "completion": f.completion_rate - s.completion_rate,
                    "defect": f.defect_rate - s.defect_rate, "true_defect": s.defect_rate})
    return res, out, {"log": log, "fitted": fitted, "inferred": inferred}


def misses(rows) -> list[str]:
    """Strategies outside the issue's thresholds, in words."""
    bad = []
    for r in rows:
        lim = OWN if r["own"] else OTHER
        if abs(r["cost"]) > lim["cost"]:
            bad.append(f"{r['name']}: cost per completed task {r['cost']:+.2%}")
        if abs(r["completion"]) > lim["completion"]:
            bad.append(f"{r['name']}: completion {100 * r['completion']:+.2f} points")
        if r["own"] and abs(r["defect"]) > lim["defect_abs"] and \
                abs(r["defect"]) > lim["defect_rel"] * r["true_defect"]:
            bad.append(f"{r['name']}: defect rate {100 * r['defect']:+.2f} points")
    return bad

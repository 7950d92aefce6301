"""The variation and volume estimators (costsim/calibrate/variation.py) on logs simulated by
tests/logsim.py with known difficulty spread s, size spread t and size-difficulty correlation r:
paired runs, one run with retries and phases, unpaired runs, costs instead of tokens, no
variation; and what a log cannot show (kept at the default)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import logsim
from costsim.logs.attempts import read_attempts
from costsim.calibrate.variation import (fit_success, fit_variation, fit_volume, patterns,
                                   tables_from_records)

PRICES = yaml.safe_load((Path(__file__).parent / "fixtures" / "prices.yaml").read_text())
TRUE = {"difficulty": 1.5, "tokens": 0.8, "tokens_follow_difficulty": 0.6}


def _workload(variation=TRUE, max_attempts=1, phases=("implement",), feedback_gain=0.0):
    all_phases = {
        "plan": {"phase": "plan", "calls": 2, "input_tokens": 800, "output_tokens": 400,
                 "success": {"cheap": 0.7, "mid": 0.8, "top": 0.9}},
        "implement": {"phase": "implement", "calls": 4, "input_tokens": 1500,
                      "output_tokens": 600, "success": {"cheap": 0.45, "mid": 0.6, "top": 0.8}}}
    return {"version": 1, "name": "w", "max_attempts": max_attempts,
            "feedback_gain": feedback_gain, "variation": dict(variation),
            "task_types": [{"name": "bugfix", "share": 1.0,
                            "phases": [all_phases[p] for p in phases]}]}


def _only(model):
    return {"version": 1, "name": f"only-{model}", "tiers": {"only": model},
            "routes": {"default": "only"}, "escalation": {"retry_context": "none"}}


RUNS = [_only("cheap"), _only("mid"), _only("top")]


def _fit(tmp_path, workload, strategies, *, assign="all", tasks=4000, seed=3, cost=False,
         default=None, zero_tokens=False):
    df = logsim.simulate_log(PRICES, workload, strategies, tasks=tasks, seed=seed,
                             rows="attempt", assign=assign, cost=cost)
    if zero_tokens:         # a log that knows only what each attempt cost
        df[["input_tokens", "cached_input_tokens", "output_tokens"]] = 0
    path = tmp_path / "log.parquet"
    logsim.write_log(df, path)
    outcomes, sizes = tables_from_records(read_attempts(path).frame)
    return fit_variation(outcomes, sizes, default=default)


@pytest.fixture(autouse=True)
def _needs_pyarrow():
    pytest.importorskip("pyarrow")


def test_paired_runs_show_all_three(tmp_path):
    f = _fit(tmp_path, _workload(), RUNS)
    assert f.source == {"difficulty": "log", "tokens": "log", "tokens_follow_difficulty": "log"}
    assert f.difficulty == pytest.approx(1.5, abs=max(0.15, 3 * f.se_difficulty))
    assert f.tokens == pytest.approx(0.8, abs=0.04)
    assert f.tokens_follow_difficulty == pytest.approx(0.6, abs=0.08)
    # the item rates are rates over all tasks, as the workload's success map says
    rates = {k[2]: v for k, v in f.success.rates.items()}
    assert rates == pytest.approx({"cheap": 0.45, "mid": 0.6, "top": 0.8}, abs=0.03)


def test_costs_show_sizes_when_the_log_has_no_tokens(tmp_path):
    f = _fit(tmp_path, _workload(), RUNS, cost=True, zero_tokens=True)
    assert f.tokens == pytest.approx(0.8, abs=0.04)
    assert f.tokens_follow_difficulty == pytest.approx(0.6, abs=0.08)


def test_one_run_with_retries_and_phases(tmp_path):
    # no pairs: retries (a third try fails more often than a second) and a plan phase whose
    # retries foretell implement's show s
    wl = _workload(max_attempts=3, phases=("plan", "implement"), feedback_gain=0.3)
    f = _fit(tmp_path, wl, ["single:mid"], tasks=6000)
    assert f.source["difficulty"] == "log"
    assert f.difficulty == pytest.approx(1.5, abs=max(0.25, 4 * f.se_difficulty))
    assert f.tokens == pytest.approx(0.8, abs=0.04)
    assert f.tokens_follow_difficulty == pytest.approx(0.6, abs=0.1)


def test_unpaired_runs_keep_the_default_spread_and_fit_the_rest(tmp_path):
    f = _fit(tmp_path, _workload(), RUNS, assign="split", default=TRUE)
    assert f.source["difficulty"] == "default" and f.difficulty == 1.5
    assert any("two outcomes" in n for n in f.notes)
    assert f.tokens == pytest.approx(0.8, abs=0.04)
    # with the right s, how size follows difficulty shows in which tasks fail
    assert f.source["tokens_follow_difficulty"] == "log"
    assert f.tokens_follow_difficulty == pytest.approx(0.6, abs=0.15)


def test_no_variation(tmp_path):
    f = _fit(tmp_path, _workload({"difficulty": 0.0, "tokens": 0.0}), RUNS,
             default={"tokens_follow_difficulty": 0.4})
    assert f.difficulty < 0.25
    assert f.tokens < 0.01
    # outcomes that do not hang together say nothing about how size follows difficulty
    if f.difficulty < 0.05:
        assert f.tokens_follow_difficulty == 0.4


def test_a_single_cascade_run_cannot_show_the_spread(tmp_path):
    """cheap first, top where it failed, once each: three outcome patterns, three parameters
    (two rates and s) -- any s fits, so the default stays."""
    casc = {"version": 1, "name": "cascade", "tiers": {"budget": "cheap", "premium": "top"},
            "routes": {"default": "budget"},
            "escalation": {"after_failures": 1, "retry_context": "none"}}
    f = _fit(tmp_path, _workload(max_attempts=2), [casc], default={"difficulty": 2.0})
    assert f.source["difficulty"] == "default" and f.difficulty == 2.0
    assert not math.isfinite(f.se_difficulty) or f.se_difficulty > 1.0


def test_pattern_likelihood_worked_by_hand():
    """Two items, s = 0: patterns are independent coins; the MLE rates are the shares."""
    rows = [("t1", "a", True), ("t1", "b", False), ("t2", "a", False), ("t2", "b", False),
            ("t3", "a", True), ("t3", "b", True), ("t4", "a", True)]
    P = patterns(pd.DataFrame(rows, columns=["task", "item", "success"]))
    assert P.tasks == 4 and P.multi == 3 and len(P.n) == 4
    fit = fit_success(P, s_fixed=0.0)
    assert fit.rates["a"] == pytest.approx(3 / 4, abs=1e-6)
    assert fit.rates["b"] == pytest.approx(1 / 3, abs=1e-6)


# --- monthly volume -----------------------------------------------------------------------------

def _first_seen(months, mean, cv, seed):
    wl = _workload({"difficulty": 0.0})
    wl["tasks_per_month"] = {"mean": mean, "cv": cv}
    df = logsim.simulate_log(PRICES, wl, ["single:mid"], months=months, seed=seed,
                             rows="attempt", start="2025-01-01T00:00:00Z")
    return df.groupby("task_id")["timestamp"].min()


def test_volume_recovers_mean_and_cv():
    fits = [fit_volume(_first_seen(24, 800, 0.3, seed)) for seed in range(3)]
    for f in fits:
        assert f.source == {"mean": "log", "cv": "log"}
        assert f.months == pytest.approx(24, abs=0.1)
        assert f.mean == pytest.approx(800, rel=0.2)
    # cv from 24 months has a standard error of about 0.05: the average of three within 0.1
    assert np.mean([f.cv for f in fits]) == pytest.approx(0.3, abs=0.1)


def test_volume_without_month_to_month_variation_and_short_logs():
    f = fit_volume(_first_seen(12, 500, 0.0, 1))
    assert f.cv < 0.08 and f.mean == pytest.approx(500, rel=0.05)
    short = fit_volume(_first_seen(2, 500, 0.5, 1), default_cv=0.25)
    assert short.source["cv"] == "default" and short.cv == 0.25
    assert short.mean == pytest.approx(500, rel=0.15)


def _tables(tmp_path, assign, tasks, seed=5):
    df = logsim.simulate_log(PRICES, _workload(), [_only("cheap"), _only("top")], tasks=tasks,
                             seed=seed, rows="attempt", assign=assign, cost=True)
    df[["input_tokens", "cached_input_tokens", "output_tokens"]] = 0    # costs only
    path = tmp_path / f"{assign}.parquet"
    logsim.write_log(df, path)
    return tables_from_records(read_attempts(path).frame)


def _profile(outcomes, sizes, spreads):
    from costsim.calibrate.variation import fit_sizes

    P = patterns(outcomes)
    return [fit_sizes(sizes, P, fit_success(P, s_fixed=s)).loglik for s in spreads]


def test_costs_cannot_stand_in_for_a_second_outcome(tmp_path):
    """Known truth s = 1.5, t = 0.8, r = 0.6 (cost-only logs of two models). Paired (both models
    on every task): the joint likelihood of costs and outcomes peaks at the true spread and
    drops by tens of units away from it. Unpaired (each model on its own half): how a model's
    cost differs between the tasks it resolved and those it did not shows about s*r, so a
    spread too small to carry that link (s < s*r = 0.9) is ruled out, but above it the
    likelihood is flat -- r takes up the difference -- and calibrate is right to keep the
    default there."""
    spreads = (0.5, 1.5, 4.0)
    paired = _profile(*_tables(tmp_path, "all", 800), spreads)
    assert paired[1] > max(paired[0], paired[2]) + 10
    unpaired = _profile(*_tables(tmp_path, "split", 3000), spreads)
    assert abs(unpaired[1] - unpaired[2]) < 1.0
    assert unpaired[0] < unpaired[1] - 5


def test_items_that_always_or_never_succeed_sit_at_the_bound():
    """An item whose attempts all succeeded has a likelihood that rises with its b for every z,
    so its maximum is at the bound B_MAX (all failed: -B_MAX), whatever the other parameters.
    There it weighs nothing (log sigmoid(30 - s z) ~ 0 on the grid), so the spread and the other
    items come out as in a fit without it: an independent route to the same numbers."""
    from costsim.calibrate.variation import B_MAX

    rng = np.random.default_rng(4)
    s, b = 2.0, {"a": -0.5, "b": 0.8, "c": 1.5}
    z = rng.standard_normal(3000)
    rows = []
    for i, zi in enumerate(z):
        for it, bk in b.items():
            rows.append((f"t{i}", it, bool(rng.random() < 1 / (1 + math.exp(-(bk - s * zi))))))
    extra = [(f"t{i}", "always", True) for i in range(40)]
    extra += [(f"t{i}", "never", False) for i in range(100, 130)]
    base = fit_success(patterns(pd.DataFrame(rows, columns=["task", "item", "success"])))
    full = fit_success(patterns(pd.DataFrame(rows + extra,
                                             columns=["task", "item", "success"])))
    bk = dict(zip(full.items, full.b))
    assert bk["always"] == B_MAX and bk["never"] == -B_MAX
    assert full.s == pytest.approx(base.s, abs=1e-4)
    assert abs(base.s - s) < 0.3                       # and the fit itself is right
    for it, v in zip(base.items, base.b):
        assert bk[it] == pytest.approx(v, abs=1e-4)

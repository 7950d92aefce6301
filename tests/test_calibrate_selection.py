"""Rates over all tasks read from a log bigger than the variation fit's sample
(costsim.calibrate.fit.rates_over_all_tasks): the whole log gives the level, the sample only the
selection (which tasks reach an attempt).

The truth is known by construction: tests/logsim.py (written apart from costsim) simulates one
phase with a success map {a: [0.5, 0.97]} and variation.difficulty 2, so the retry succeeds for
97% of all tasks but for fewer of the hard ones that failed their first try (about 95% here).
"""

from __future__ import annotations

import types

import pandas as pd
import pytest

import logsim
from costsim.calibrate import variation as V
from costsim.calibrate.fit import rates_over_all_tasks

S = 2.0
RETRY_RATE = 0.97
# Spread of the retry's rate over all tasks read back below, over seeds 1-20 of the same
# construction (20,000 tasks, a sample up to the 20th retry): sd 0.0057, mean 0.9693.
TOL = 0.02     # 3.5 sd


def _one_phase():
    px = {"version": 1, "as_of": "2026-11-20", "currency": "USD", "models": {
        "a": {"provider": "p", "tier": "budget", "input": 1.0, "output": 2.0}}}
    wl = {"version": 1, "name": "one", "max_attempts": 2, "system_tokens": 0,
          "variation": {"difficulty": S},
          "task_types": [{"name": "t", "share": 1.0, "phases": [
              {"phase": "implement", "calls": 1, "input_tokens": 1000, "output_tokens": 100,
               "success": {"a": [0.5, RETRY_RATE]}}]}]}
    return px, wl


def _retry_rate(seed: int, retries_in_sample: int = 20, tasks: int = 20_000):
    """(the retry's rate over all tasks as the success fit gets it, whether every retry in the
    sample succeeded). The sample is the log's first tasks up to its ``retries_in_sample``-th
    retry, fitted with the spread held at the truth (so only the sample's selection is read)."""
    px, wl = _one_phase()
    df = logsim.simulate_log(px, wl, "single:a", tasks=tasks, rows="attempt", seed=seed)
    df["signals"] = ""
    last = df.loc[df["attempt"] == 2, "task_id"].iloc[retries_in_sample - 1]
    sample = df[df["task_id"] <= last]
    outcomes, _ = V.tables_from_attempts(sample.assign(run="", cost=0.0))
    vf = types.SimpleNamespace(success=V.fit_success(V.patterns(outcomes), s_fixed=S),
                               difficulty=S)
    cells = (df.groupby(["task_type", "phase", "attempt", "model", "signals"])["success"]
             .agg(n="size", k="sum").reset_index())
    cells["k"] = cells["k"].astype(float)
    got = rates_over_all_tasks(cells, vf)
    retry = got[got["attempt"] == 2]
    all_ok = bool(sample.loc[sample["attempt"] == 2, "success"].all())
    return float(retry["k"].sum() / retry["n"].sum()), all_ok


@pytest.mark.parametrize("seed", [8, 9, 10])
def test_a_retry_that_never_failed_in_the_sample_gets_the_whole_logs_rate(seed):
    """On these seeds all 20 retries in the sample succeeded, though over the whole log about 1
    in 20 fails: the sample's own fit says 1.0 (what the fit used to pass on, so the feedback
    gain saw a retry that always works); read through the sample's selection from the whole
    log's retries, it is the truth."""
    rate, all_ok = _retry_rate(seed)
    assert all_ok            # the construction is the case under test
    assert abs(rate - RETRY_RATE) < TOL, rate


def test_a_retry_with_both_outcomes_in_the_sample_gets_the_truth_too():
    rate, all_ok = _retry_rate(1)
    assert not all_ok
    assert abs(rate - RETRY_RATE) < TOL, rate


def test_on_the_sample_itself_the_rate_is_the_variation_fits():
    """A log no bigger than the sample: each item's rate is the variation fit's own, as
    before (the selection is read where the level is)."""
    px, wl = _one_phase()
    df = logsim.simulate_log(px, wl, "single:a", tasks=1_500, rows="attempt", seed=3)
    df["signals"] = ""
    outcomes, _ = V.tables_from_attempts(df.assign(run="", cost=0.0))
    sf = V.fit_success(V.patterns(outcomes), s_fixed=S)
    cells = (df.groupby(["task_type", "phase", "attempt", "model", "signals"])["success"]
             .agg(n="size", k="sum").reset_index())
    got = rates_over_all_tasks(cells, types.SimpleNamespace(success=sf, difficulty=S))
    for a, kind in ((1, "first"), (2, "retry")):
        row = got[got["attempt"] == a].iloc[0]
        assert row["k"] / row["n"] == pytest.approx(
            sf.rates[("t", "implement", "a", kind, "")], rel=1e-12)
    assert isinstance(got, pd.DataFrame)

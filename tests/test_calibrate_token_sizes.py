"""The token fit when tasks differ in size and the large tasks are the hard ones.

tests/logsim.py (its own implementation of the cost model) multiplies every token count of a task
by ``u = exp(t (r z + sqrt(1-r^2) e) - t^2/2)``, the same for all its phases and attempts. With a
strong coupling (t = 1, r = 0.8) the retried and escalated attempts are the large tasks and later
phases run on the small ones that passed: read naively, the per-cell means put that selection into
per-attempt growth.

What the fit can recover: logsim's token counts are the workload's times ``u`` (rounded), so once
the selection is removed every size the fit reads is the true one times one common factor, the
sample's mean ``u``. That gives two checks:

- every fitted size over the true one (system prompt, each phase's input and output per call) is
  the same number up to rounding (0.5%: an output of 250 tokens rounds by 0.2%);
- that number is 1 within sampling error: ``u`` has variance ``exp(t^2) - 1`` (1.72 at t = 1), so
  the mean over N tasks has standard deviation ``sqrt(exp(t^2) - 1) / sqrt(N)``, 2.1% at
  N = 4,000; the check allows 3 of them.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from calibrate_logs import PRICES, ROOT

T_SPREAD, R_FOLLOW, TASKS = 1.0, 0.8, 4_000
TOL = 3 * math.sqrt(math.exp(T_SPREAD ** 2) - 1) / math.sqrt(TASKS)


def _token_table(tmp_path, variation, rows, strategies=None, assign="all"):
    from logsim import simulate_log, write_log

    from costsim.calibrate.measure import Measure
    from costsim.loader import load_prices
    from costsim.logs.runslog import read_log

    wl = yaml.safe_load((ROOT / "workloads" / "medium-team.yaml").read_text())
    if variation is None:
        wl.pop("variation", None)
    else:
        wl["variation"] = variation
    log = tmp_path / f"runs-{rows}.csv"
    write_log(simulate_log(PRICES, wl,
                           strategies or ROOT / "policies" / "cheapest-routing.yaml",
                           tasks=TASKS, seed=11, rows=rows, assign=assign), log)
    rl = read_log(log)
    try:
        m = Measure(rl, load_prices(PRICES), str(PRICES))
        _, order, _ = m.structure()
        tok = m.token_table(order)
    finally:
        rl.close()
    return wl, tok, order


def _ratios(wl, fit) -> dict:
    """Fitted over true, per size the workload states."""
    out = {"system_tokens": fit.system_tokens / wl["system_tokens"]}
    for t in wl["task_types"]:
        for ph in t["phases"]:
            got = fit.phases[(t["name"], ph["phase"])]
            assert got["calls"] == ph["calls"]
            for k in ("input_tokens", "output_tokens"):
                out[f"{t['name']}/{ph['phase']} {k}"] = got[k] / ph[k]
    return out


@pytest.fixture(scope="module")
def coupled(tmp_path_factory):
    return _token_table(tmp_path_factory.mktemp("coupled"),
                        {"difficulty": 3.24, "tokens": T_SPREAD,
                         "tokens_follow_difficulty": R_FOLLOW}, "attempt")


def test_sizes_recovered_when_large_tasks_are_the_hard_ones(coupled):
    from costsim.calibrate.tokens import fit_tokens

    wl, tok, order = coupled
    ratios = _ratios(wl, fit_tokens(tok, order))
    common = float(np.median(list(ratios.values())))
    assert abs(common - 1) < TOL, (common, TOL)
    off = {k: round(v / common - 1, 4) for k, v in ratios.items() if abs(v / common - 1) > 0.005}
    assert not off, off


def test_the_naive_means_are_off_on_the_same_log(coupled):
    """The same aggregates without each cell's task sizes (what the fit read before): the
    selection shows as a system prompt far from the truth, so the test above can fail."""
    from costsim.calibrate.tokens import fit_tokens

    wl, tok, order = coupled
    naive = fit_tokens(tok.drop(columns=["xs", "nxs"]), order)
    assert abs(naive.system_tokens / wl["system_tokens"] - 1) > 0.3


def test_no_size_variation_reads_the_tokens_as_before(tmp_path):
    """Without variation every task's first attempt has the same input: factor 1 everywhere,
    and the fit is the one without the size columns to the last digit."""
    from costsim.calibrate.tokens import fit_tokens

    wl, tok, order = _token_table(tmp_path, None, "call")
    assert (tok["xs"] == tok["nxs"]).all()
    a, b = fit_tokens(tok, order), fit_tokens(tok.drop(columns=["xs", "nxs"]), order)
    assert (a.system_tokens, a.cache_hit_rate, a.phases) == \
        (b.system_tokens, b.cache_hit_rate, b.phases)
    assert a.system_tokens == wl["system_tokens"]


@pytest.mark.parametrize("rows", ["call", "attempt"])
def test_runs_that_split_the_tasks_read_one_size(tmp_path, rows):
    """An A/B log: two strategies, each on its own half of the tasks (the bundled spread, t
    0.75). Each run's tasks of a type have their own mean size factor, so the runs' cells of a
    type disagree by a few percent; the fit brings each run to its type's size through the
    output tokens per call (the same for every model) before the types are brought to one
    system prompt. Every fitted size over the true one is then one number (to 1%: the runs'
    ratios are read from sampled outputs) within sampling error of 1. Before, one factor per
    type read neither run's: on this log the sizes came out 9% above the truth overall (a
    sampling error is 4%), on another one type's 16% above its tasks' in the log."""
    from costsim.calibrate.tokens import fit_tokens

    wl, tok, order = _token_table(
        tmp_path, {"difficulty": 3.24, "tokens": 0.75, "tokens_follow_difficulty": 0.24}, rows,
        strategies=[ROOT / "policies" / "two-tier.yaml", "single:claude-sonnet-5"],
        assign="split")
    ratios = _ratios(wl, fit_tokens(tok, order))
    common = float(np.median(list(ratios.values())))
    tol = 3 * math.sqrt(math.exp(0.75 ** 2) - 1) / math.sqrt(TASKS)
    assert abs(common - 1) < tol, (common, tol)
    off = {k: round(v / common - 1, 4) for k, v in ratios.items() if abs(v / common - 1) > 0.01}
    assert not off, off


def test_run_factor_counts_calls_not_rows():
    """Two runs of the same tasks' size whose attempts made different numbers of calls (one
    model works in 3 calls, the other in 6; per-attempt rows sum the outputs of all of them):
    the same output per call, so neither run is rescaled. A run whose outputs per call are 10%
    larger (larger tasks) is brought down to the pooled size, the other up."""
    import pandas as pd

    from costsim.calibrate.tokens import _run_sizes

    def cell(run, calls, out_per_call, n=10):
        return {"run": run, "task_type": "t", "phase": "p", "is_summary": 0, "attempt": 1,
                "call": None, "calls": calls, "model": "m", "n": n,
                "input": 1000.0 * calls * n, "cached": 0.0, "output": out_per_call * calls * n}

    same = pd.DataFrame([cell("a", 3, 200.0), cell("b", 6, 200.0)])
    assert _run_sizes(same) is same
    big = pd.DataFrame([cell("a", 3, 220.0), cell("b", 3, 200.0)])
    out = _run_sizes(big)
    per_call = out["output"] / (out["calls"] * out["n"])
    assert per_call.tolist() == pytest.approx([210.0, 210.0])
    assert (out["input"] / big["input"]).tolist() == pytest.approx([210 / 220, 210 / 200])

"""The variation fit's attempt records read before the log is priced (Measure.early_records).

calibrate starts the variation fit on a second thread as soon as its records are read. Read from
the log's rows before any pricing, they must be exactly the records the priced attempt table
gives (``Measurements.records`` without its cost): the same sampled tasks, attempts, order and
values, on call rows and attempt rows, with summaries, signals and several runs. Where they
cannot be (a task without an outcome; no output tokens, so the fit sizes tasks by cost) there
are none and the fit waits for the priced records.
"""

from __future__ import annotations

import pandas as pd
import pytest

from calibrate_logs import PRICES, ROOT

COLUMNS = ["run", "task_id", "task_type", "phase", "attempt", "model", "success", "calls",
           "input_tokens", "output_tokens", "signals"]


def _measure(path, limit):
    from costsim.calibrate import measure as M
    from costsim.calibrate.tokens import fit_tokens
    from costsim.loader import load_prices, load_workload
    from costsim.logs.runslog import read_log

    base = load_workload(ROOT / "workloads" / "medium-team.yaml")
    seen = []
    old = M.VARIATION_TASKS
    M.VARIATION_TASKS = limit
    log = read_log(path)
    try:
        ms = M.measure(log, load_prices(PRICES), str(PRICES),
                       growth_fn=lambda ms: fit_tokens(ms.tokens, ms.phase_order,
                                                       base).growth(),
                       records_fn=seen.append)
        again = M.Measure(log, load_prices(PRICES), str(PRICES))
        early = again.early_records(limit)
        # the priced records, read from the tables measure() built (it reads them itself only
        # when the early ones cannot stand in)
        priced, sampled = again.attempt_records(limit)
    finally:
        M.VARIATION_TASKS = old
        log.close()
    return ms, early, seen, priced, sampled


def _plain(f: pd.DataFrame) -> pd.DataFrame:
    out = f[COLUMNS].reset_index(drop=True).copy()
    for c in ("attempt", "success", "calls", "input_tokens", "output_tokens"):
        out[c] = out[c].astype("int64")
    for c in ("run", "task_id", "task_type", "phase", "model", "signals"):
        out[c] = out[c].astype(str)
    return out


@pytest.mark.parametrize("rows", ["call", "attempt"])
@pytest.mark.parametrize("limit", [150, 10_000])
def test_early_records_are_the_priced_records(tmp_path, rows, limit):
    from logsim import simulate_log, write_log

    path = tmp_path / f"runs-{rows}.csv"
    df = simulate_log(PRICES, ROOT / "workloads" / "medium-team.yaml",
                      [ROOT / "policies" / "cheapest-routing.yaml", "single:claude-sonnet-5"],
                      tasks=400, seed=2, rows=rows, assign="split")
    write_log(df, path)
    ms, early, seen, priced, sampled = _measure(path, limit)
    assert early is not None and len(seen) == 1 and seen[0] is not None
    assert sampled == ms.records_sampled == (limit < 400)
    assert priced["signals"].ne("").any()                 # signals reach the items
    assert df["kind"].eq("summary").any()                 # summaries are left out
    assert len(priced) == len(early) > 0
    pd.testing.assert_frame_equal(_plain(early), _plain(priced))
    pd.testing.assert_frame_equal(_plain(seen[0]), _plain(priced))
    # no phase shows cost alone: measure() kept the early records, without their cost
    assert ms.records["cost"].isna().all()
    pd.testing.assert_frame_equal(_plain(ms.records), _plain(priced))


def test_no_early_records_where_they_cannot_stand_in(tmp_path):
    from logsim import simulate_log, write_log

    df = simulate_log(PRICES, ROOT / "workloads" / "medium-team.yaml",
                      ROOT / "policies" / "two-tier.yaml", tasks=120, seed=3, rows="attempt")
    # a task without an outcome: the sample is drawn among the others after pricing
    unknown = df.copy()
    unknown["success"] = unknown["success"].astype(object)
    unknown.loc[unknown["task_id"] == unknown["task_id"].iloc[0], "success"] = None
    write_log(unknown, tmp_path / "unknown.csv")
    ms, early, seen, _, _ = _measure(tmp_path / "unknown.csv", 10_000)
    assert early is None and len(seen) == 1 and seen[0] is ms.records
    # no output tokens: the variation fit sizes tasks by cost, which takes the pricing
    costs = df.assign(cost_usd=0.01, input_tokens=0, cached_input_tokens=0, output_tokens=0)
    write_log(costs, tmp_path / "costs.csv")
    ms, early, seen, _, _ = _measure(tmp_path / "costs.csv", 10_000)
    assert early is None and len(seen) == 1 and seen[0] is ms.records


def test_a_phase_shown_by_cost_alone_takes_the_priced_records(tmp_path):
    """Where a phase shows cost and no tokens, the cost-only prices need the records' costs:
    the variation fit still starts on the early records, and measure() reads the priced ones."""
    from logsim import simulate_log, write_log

    df = simulate_log(PRICES, ROOT / "workloads" / "medium-team.yaml",
                      ROOT / "policies" / "two-tier.yaml", tasks=150, seed=4, rows="attempt")
    review = df["phase"] == "review"
    assert review.any() and (~review).any()
    df["cost_usd"] = None
    df.loc[review, "cost_usd"] = 0.02
    df.loc[review, ["input_tokens", "cached_input_tokens", "output_tokens"]] = 0
    write_log(df, tmp_path / "mixed.csv")
    ms, early, seen, priced, _ = _measure(tmp_path / "mixed.csv", 10_000)
    assert early is not None and seen[0] is not None
    rev = ms.records[ms.records["phase"] == "review"]
    assert len(rev) and (rev["cost"] == 0.02).all()
    pd.testing.assert_frame_equal(_plain(ms.records), _plain(priced))

"""benchmarks/fidelity_openhands.py's path on an excerpt of the real records: runs logs built from
per-instance outcomes, `costsim calibrate` (cost-only log -> workload + effective prices) then
`costsim compare` of the cascade, against the replay of the same records."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
FIX = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(ROOT / "benchmarks"))

import fidelity_openhands as fo  # noqa: E402


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    """Two cheaper -> dearer pairs of the excerpt (4 configs, the same 60 swt-bench instances)."""
    records, _ = fo.load_records(FIX / "openhands_excerpt.csv")
    tmp = tmp_path_factory.mktemp("fid")
    return fo.run_benchmark("swt-bench", records, tmp, 2, np.random.default_rng(0))


def test_replay_is_the_recorded_cascade_and_calibrate_compare_runs(rows):
    # run_benchmark asserts that the replay equals the cascade computed from the records
    assert len(rows) == 2
    for r in rows:
        assert r.instances == 60
        for k in ("paired", "unpaired"):
            assert 0 < getattr(r, f"{k}_completion") <= 1
            assert getattr(r, f"{k}_cost_per_completed") > 0
        assert r.unpaired_s == pytest.approx(3.24)      # one outcome per instance: the base's
        assert r.paired_s != pytest.approx(3.24)        # fitted from the paired outcomes


def test_paired_prediction_follows_the_replay_where_coins_do_not(rows):
    """A paired log shows how the two configs' outcomes hang together: calibrate + compare
    lands near the replayed completion (within the sampling error of 60 instances, ~3 points
    at worst here) and closer than independent coins on every pair."""
    for r in rows:
        paired = abs(r.paired_completion - r.completion)
        coins = abs(r.coins_completion - r.completion)
        assert paired < 0.03
        assert paired < coins


def test_report_has_the_calibrate_columns(rows):
    r = fo.summarize(rows)
    text = fo.report(r, [], FIX / "openhands_excerpt.csv", 1.0, 2)
    assert "### calibrate + compare against the replay" in text
    assert "| all pairs | paired |" in text and "| all pairs | unpaired |" in text
    assert isinstance(r, pd.DataFrame) and r["paired_points"].notna().all()


# --- the unpaired error taken apart --------------------------------------------------------------

def test_the_oracle_with_the_unpaired_logs_inputs_is_calibrate_and_compare(rows):
    """Two routes to the same number: the engine fed with the half-logs' resolved shares and mean
    costs and the variation calibrate wrote, against `costsim calibrate` + `costsim compare` on
    the unpaired log (run_benchmark asserts it too; this keeps the check if that is dropped)."""
    for r in rows:
        comp, cpct = r.oracles["half_unpaired"]
        assert comp == pytest.approx(r.unpaired_completion, abs=1e-5)
        assert cpct == pytest.approx(r.unpaired_cost_per_completed, rel=1e-4)
        # completion does not depend on sizes: the size fit changes cost only
        assert r.oracles["full_unpaired"][0] == pytest.approx(r.oracles["full_bundled_s"][0],
                                                              abs=1e-9)


def test_the_report_takes_the_unpaired_error_apart(rows):
    r = fo.summarize(rows)
    text = fo.report(r, [], FIX / "openhands_excerpt.csv", 1.0, 2)
    assert "### Why the unpaired log misses" in text
    assert "| all pairs | unpaired + 20% shadow |" in text
    for k in fo.ORACLES:
        assert r[f"{k}_points"].notna().all() and r[f"{k}_cost"].notna().all()


def test_halves_cover_the_instances_once_and_the_shadow_sample_twice():
    records, _ = fo.load_records(FIX / "openhands_excerpt.csv")
    a, b = sorted(records["config"].unique())[:2]
    inst = set(records["instance"])                     # 60 instances, all run by every config
    un = fo.unpaired_log(records, a, b, inst, np.random.default_rng(1))
    ia, ib = (set(un.loc[un["model"] == m, "task_id"]) for m in (a, b))
    assert ia | ib == inst and not ia & ib and (len(ia), len(ib)) == (30, 30)
    sh = fo.shadow_log(records, a, b, inst, np.random.default_rng(1), share=0.2)
    sa, sb = (set(sh.loc[sh["model"] == m, "task_id"]) for m in (a, b))
    assert sa | sb == inst and len(sa & sb) == 12      # 20% of 60 on both
    assert (len(sa), len(sb)) == (12 + 24, 12 + 24)


def test_cost_error_counts_a_prediction_of_no_completion_as_a_miss():
    got = fo._cost_error([1.1, None, np.inf, 0.5], [1.0, 2.0, 2.0, 1.0])
    assert got[0] == pytest.approx(10.0) and got[3] == pytest.approx(-50.0)
    assert got[1] == np.inf and got[2] == np.inf


def test_mean_estimators_worked_by_hand():
    # config x ran three instances at 1, 1 and e^2 (full-set mean 2): sample mean (2 + e^2) / 3;
    # lognormal: log costs 0, 0, 2 -> mean 2/3, variance 8/9 -> exp(2/3 + 4/9)
    log = pd.DataFrame({"model": ["x"] * 3, "cost_usd": [1.0, 1.0, np.e ** 2]})
    sample, lognormal = fo.mean_estimators(log, ["x"], [[2.0]])
    assert sample[0] == pytest.approx((2 + np.e ** 2) / 3 / 2 - 1)
    assert lognormal[0] == pytest.approx(np.exp(2 / 3 + 4 / 9) / 2 - 1)

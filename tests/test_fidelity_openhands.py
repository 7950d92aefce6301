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

"""calibrate fits `variation` (how tasks differ) by maximum likelihood: checked on logs simulated
by tests/logsim.py (an implementation of the cost model written apart from costsim) with known
difficulty spread s, token spread t and tokens_follow_difficulty r."""

from __future__ import annotations

import math

import pytest
import yaml

from calibrate_logs import PRICES
from costsim.calibrate import calibrate

TRUTH = {"difficulty": 2.0, "tokens": 0.6, "tokens_follow_difficulty": 0.5}
CHEAP, DEAR = "deepseek-v4-flash", "claude-sonnet-5"


def _workload(variation=TRUTH, max_attempts=2, gain=0.5):
    return {"version": 1, "name": "v", "tasks_per_month": 1000, "max_attempts": max_attempts,
            "system_tokens": 2000, "cache_hit_rate": 0.5, "feedback_gain": gain,
            "variation": dict(variation),
            "task_types": [{"name": "t", "share": 1.0, "phases": [
                {"phase": "code", "calls": 3, "input_tokens": 3000, "output_tokens": 800,
                 "difficulty": 60}]}]}


def _log(tmp_path, wl, strategies, tasks, assign, seed=5):
    from logsim import simulate_log, write_log

    (tmp_path / "w.yaml").write_text(yaml.safe_dump(wl))
    p = tmp_path / "runs.csv"
    write_log(simulate_log(PRICES, tmp_path / "w.yaml", strategies, tasks=tasks, seed=seed,
                           rows="attempt", assign=assign), p)
    return p


@pytest.fixture(scope="module")
def paired(tmp_path_factory):
    """Two models each ran every task (with up to one retry): outcomes of one task in two runs
    and within a run show the spread; output tokens show the size."""
    d = tmp_path_factory.mktemp("paired")
    p = _log(d, _workload(), [f"single:{CHEAP}", f"single:{DEAR}"], 3000, "all")
    return calibrate(p, prices=PRICES, workload=d / "w.yaml")


def test_variation_recovered_from_a_paired_log(paired):
    v = paired.workload_data["variation"]
    info = paired.fitted["variation"]
    assert info["source"] == {"difficulty": "log", "tokens": "log",
                              "tokens_follow_difficulty": "log"}
    # s: within 4 standard errors of the fit's own (observed-information) standard error
    se = info["se_difficulty"]
    assert 0 < se < 0.5
    assert abs(v["difficulty"] - TRUTH["difficulty"]) < 4 * se
    # t: one size per (task, run) over N = 6000 runs of 3000 tasks; the spread of a normal
    # sample has a standard error of about t / sqrt(2 N') with N' the 3000 tasks (the two runs
    # of a task share their size), so 4 s.e. ~ 0.044
    n = 3000
    assert abs(v["tokens"] - TRUTH["tokens"]) < 4 * TRUTH["tokens"] / math.sqrt(2 * n)
    # r: the share of the size that goes with difficulty is read through the outcomes, which
    # pin a task's difficulty down to about half its variance: s.e. ~ sqrt(2 (1 - r^2) / N)
    r = TRUTH["tokens_follow_difficulty"]
    assert abs(v["tokens_follow_difficulty"] - r) < 4 * math.sqrt(2 * (1 - r * r) / n)


def test_success_is_a_rate_over_all_tasks(paired):
    """Retries run on the tasks the first try failed (the harder ones): without the task-level
    difficulty the fitted gain comes out far below the truth (0.5)."""
    gain, se = paired.fitted["feedback_gain"], paired.fitted["feedback_gain_se"]
    assert abs(gain - 0.5) < max(4 * se, 0.03)


def test_one_outcome_per_task_keeps_the_difficulty_of_the_base_workload(tmp_path):
    """Each task ran once (split between two models), one attempt: nothing shows how outcomes
    of one task hang together, so the spread is --workload's, and the header says so."""
    base = _workload(variation={"difficulty": 1.3, "tokens": 0.2,
                                "tokens_follow_difficulty": 0.1}, max_attempts=1)
    p = _log(tmp_path, _workload(max_attempts=1), [f"single:{CHEAP}", f"single:{DEAR}"], 600,
             "split")
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    res = calibrate(p, prices=PRICES, workload=tmp_path / "base.yaml")
    v = res.workload_data["variation"]
    assert v["difficulty"] == 1.3
    assert res.fitted["variation"]["source"]["difficulty"] == "default"
    assert any(f == "variation.difficulty" for f, _ in res.from_base)
    assert "variation.difficulty" in res.workload_yaml()
    # the sizes still show their spread
    assert abs(v["tokens"] - TRUTH["tokens"]) < 4 * TRUTH["tokens"] / math.sqrt(2 * 600)

"""A recommendation's projection (a route moved for one task type only, calibrate/check.py
``variant``) under ``variation``: checked against tests/reference_model.py, which evaluates the
moved policy on that task type alone (an independent implementation of the cost model)."""

from __future__ import annotations

import pytest
import yaml

import reference_model as ref
from calibrate_logs import CAL_PRICES
from costsim.api import _as_prices
from costsim.calibrate.check import compile_for, metrics_by_task_type, variant
from costsim.engine.compile import Strategy
from costsim.loader import load_policy, load_workload

PRICES = yaml.safe_load(CAL_PRICES.read_text())
PHASES = [{"phase": "implement", "calls": 2, "input_tokens": 2000, "output_tokens": 500,
           "difficulty": 80},
          {"phase": "review", "calls": 1, "input_tokens": 3000, "output_tokens": 300,
           "success": {"budget": 0.9, "midrange": 0.95, "premium": 0.97}}]
VARIATION = {"difficulty": 2.0, "tokens": 0.5, "tokens_follow_difficulty": 0.4}
POLICY = {"version": 1, "name": "team",
          "tiers": {"budget": "cheap", "midrange": "mid", "premium": "top"},
          "routes": {"default": "budget", "review": "premium"},
          "escalation": {"after_failures": 2}}


def _workload(types):
    return {"version": 1, "name": "w", "max_attempts": 4, "system_tokens": 1000,
            "cache_hit_rate": 0.5, "feedback_gain": 0.3, "variation": dict(VARIATION),
            "task_types": types}


def _files(tmp_path, wl, pol):
    (tmp_path / "w.yaml").write_text(yaml.safe_dump(wl))
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(pol))
    return load_workload(tmp_path / "w.yaml"), load_policy(tmp_path / "p.yaml")


def test_a_raise_for_one_task_type_is_projected_with_the_new_models_rates(tmp_path):
    """Two task types share the implement phase; the raise (implement on midrange) is projected
    for bugfix only. bugfix after = the reference's moved policy on a bugfix-only workload;
    feature stays as before. The old projection kept the budget model's intercepts beside the
    midrange model's costs: completion did not move and cost rose ~86%."""
    types = [{"name": "bugfix", "share": 0.6, "phases": PHASES},
             {"name": "feature", "share": 0.4, "phases": [dict(PHASES[0], difficulty=70),
                                                          PHASES[1]]}]
    wl, pol = _files(tmp_path, _workload(types), POLICY)
    moved = dict(POLICY, routes=dict(POLICY["routes"], implement="midrange"))
    (tmp_path / "m").mkdir()
    _, pol1 = _files(tmp_path / "m", _workload(types), moved)
    table, _ = _as_prices(CAL_PRICES)
    L0 = compile_for(table, Strategy.routed(pol), wl)
    L1 = compile_for(table, Strategy.routed(pol1), wl)
    got = metrics_by_task_type(variant(L0, L1, "bugfix", "implement"))
    for name, tt, policy in (("bugfix", types[0], moved), ("feature", types[1], POLICY)):
        want = ref.evaluate(PRICES, _workload([dict(tt, share=1.0)]), policy=policy)
        for k in ("spend_per_task", "completion_rate", "cost_per_completed_task"):
            assert got[name][k] == pytest.approx(want[k], rel=1e-6), (name, k)
    # the trade the recommendation reports: bugfix completes more on midrange
    before = metrics_by_task_type(L0)["bugfix"]
    assert got["bugfix"]["completion_rate"] > before["completion_rate"] + 0.1


def test_the_projection_samples_like_it_integrates(tmp_path):
    """The Monte Carlo engine reads the projection's per-cell size pieces (built lazily):
    its mean spend agrees with the analytic one within sampling error."""
    from costsim.engine.montecarlo import simulate_tasks

    types = [{"name": "bugfix", "share": 1.0, "phases": PHASES}]
    wl, pol = _files(tmp_path, _workload(types), POLICY)
    moved = dict(POLICY, routes=dict(POLICY["routes"], implement="midrange"))
    (tmp_path / "m").mkdir()
    _, pol1 = _files(tmp_path / "m", _workload(types), moved)
    table, _ = _as_prices(CAL_PRICES)
    Lv = variant(compile_for(table, Strategy.routed(pol), wl),
                 compile_for(table, Strategy.routed(pol1), wl), "bugfix", "implement")
    a = metrics_by_task_type(Lv)["bugfix"]
    r = simulate_tasks(Lv, samples=100_000, seed=1, threads=1)
    for k in ("spend_per_task", "completion_rate"):
        assert abs(getattr(r, k) - a[k]) < 4 * r.stderr[k], k

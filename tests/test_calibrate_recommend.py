"""Recommendations that pay: projected by the engine on the fitted workload, kept only when the
projection is cheaper per completed task without losing quality, or dearer but buying it."""

from __future__ import annotations

import pytest
import yaml

from calibrate_logs import CAL_PRICES
from costsim.calibrate import calibrate
from costsim.calibrate.recommend import pays, trade_words

PRICES = yaml.safe_load(CAL_PRICES.read_text())


def _workload(tmp_path, implement_d: float, gain: float, defects=None, docs=False):
    phases = [{"phase": "implement", "calls": 2, "input_tokens": 2000, "output_tokens": 500,
               "difficulty": implement_d},
              {"phase": "review", "calls": 1, "input_tokens": 3000, "output_tokens": 300,
               "success": {"budget": 0.9, "midrange": 0.95, "premium": 0.97}}]
    types = [{"name": "bugfix", "share": 0.5 if docs else 1.0, "phases": phases}]
    if docs:
        types.append({"name": "docs", "share": 0.5, "phases": [
            {"phase": "docs", "calls": 1, "input_tokens": 1000, "output_tokens": 800,
             "difficulty": 30}]})
    w = {"version": 1, "name": "w", "max_attempts": 4, "system_tokens": 1000,
         "cache_hit_rate": 0.5, "feedback_gain": gain, "task_types": types}
    if defects:
        w["defects"] = defects
    p = tmp_path / "w.yaml"
    p.write_text(yaml.safe_dump(w))
    return p


def _policy(tmp_path, name="team", **routes):
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump({
        "version": 1, "name": name,
        "tiers": {"budget": "cheap", "midrange": "mid", "premium": "top"},
        "routes": {"default": "budget", "review": "premium", **routes},
        "escalation": {"after_failures": 2}}))
    return p


def _log(tmp_path, workload, policies, tasks=6000, seed=0, **kw):
    from logsim import simulate_log, write_log

    df = simulate_log(CAL_PRICES, workload, policies, tasks=tasks, seed=seed, rows="attempt",
                      **kw)
    p = tmp_path / "runs.csv"
    write_log(df, p)
    return p


def _paid(rec):
    ok, _ = pays(rec["projected"])
    return ok


def test_a_raise_that_pays_is_recommended_with_its_trade(tmp_path):
    """Budget starts a hard implement phase (first-try success about 5%): starting on the
    midrange model completes more tasks; the trade is in the evidence."""
    w = _workload(tmp_path, implement_d=80, gain=0.3)
    res = calibrate(_log(tmp_path, w, _policy(tmp_path)), prices=CAL_PRICES,
                    min_samples=30)
    recs = {(r["task_type"], r["phase"]): r for r in res.recommendations}
    up = recs[("bugfix", "implement")]
    assert up["action"] == "raise" and (up["from_model"], up["to_model"]) == ("cheap", "mid")
    p = up["projected"]
    assert _paid(up)
    assert p["completion_rate_after"] > p["completion_rate_before"] + 0.01
    assert up["evidence"]["trade"] == trade_words(p)
    assert "points completion" in up["evidence"]["trade"]
    assert up["evidence"]["rates"]["first_attempt_success"] < 0.1
    # The premise, by an independent route: tests/reference_model.py on the workload the log
    # was simulated from (no variation) puts completion at 0.834 starting on budget and 0.954
    # on midrange. By hand: a model's first try succeeds with p1 = sigmoid((score - 80) / 10),
    # a later one with p1 + 0.3 (1 - p1); implement then fails all four tries with
    # 0.953 * 0.667 * 0.512^2 = 0.167 (cheap, cheap, mid, mid) or 0.731 * 0.512 * 0.35^2 =
    # 0.046 (mid, mid, top, top); review (top, 0.97 a try, four tries) loses 1e-6. The
    # projection from the fitted workload lands within a point of both.
    import reference_model as ref

    truth = yaml.safe_load(w.read_text())
    pol = yaml.safe_load((tmp_path / "team.yaml").read_text())
    moved = dict(pol, routes=dict(pol["routes"], implement="midrange"))
    for key, policy in (("before", pol), ("after", moved)):
        want = ref.evaluate(PRICES, truth, policy=policy)["completion_rate"]
        assert abs(p[f"completion_rate_{key}"] - want) < 0.01, key


def test_a_raise_that_does_not_pay_is_a_note_not_a_recommendation(tmp_path):
    """Budget succeeds at the first try 55% of the time (below the 60% threshold) but its
    retries nearly always succeed: midrange costs more per completed task for no gain."""
    w = _workload(tmp_path, implement_d=48, gain=0.9)
    res = calibrate(_log(tmp_path, w, _policy(tmp_path)), prices=CAL_PRICES)
    assert ("bugfix", "implement") not in {(r["task_type"], r["phase"])
                                            for r in res.recommendations}
    note = next(n for n in res.notes if n.startswith("bugfix/implement: not recommending raise"))
    assert "dearer per completed task" in note and "cost per completed task" in note
    for r in res.recommendations:
        assert _paid(r)


def test_ab_arms_give_a_lower_from_the_comparison(tmp_path):
    """A/B arms: half the docs tasks start on the premium model, half on midrange; both
    succeed about as often, so the comparison recommends midrange for docs."""
    w = _workload(tmp_path, implement_d=60, gain=0.5, docs=True)
    a = _policy(tmp_path, "premium-docs", docs="premium")
    b = _policy(tmp_path, "midrange-docs", docs="midrange")
    res = calibrate(_log(tmp_path, w, [a, b], assign="split", seed=2), prices=CAL_PRICES,
                    policies=[a])
    assert res.baseline.startswith("policy premium-docs")
    assert {s["run"] for s in res.strategies} == {"premium-docs", "midrange-docs"}
    rec = next(r for r in res.recommendations if (r["task_type"], r["phase"]) ==
               ("docs", "docs"))
    assert rec["action"] == "lower" and rec["evidence"]["rule"] == "compare"
    assert (rec["from_model"], rec["to_model"]) == ("top", "mid")
    c = rec["evidence"]["counts"]
    assert c["from_first_attempts"] > 1000 and c["to_first_attempts"] > 1000
    assert rec["projected"]["delta"] < 0
    # the fit check covers both arms, each under its own policy
    assert {r["run"] for r in res.fit} == {"premium-docs", "midrange-docs"}
    assert not any(r["flag_significant"] for r in res.fit), res.fit_flags


def test_pays_and_trade_words_by_hand():
    base = {"cost_per_completed_task_before": 1.0, "completion_rate_before": 0.90,
            "defect_rate_before": 0.02}

    def d(cost, comp, defect):
        return dict(base, cost_per_completed_task_after=cost, delta=cost - 1.0,
                    delta_pct=cost - 1.0, completion_rate_after=comp, defect_rate_after=defect)

    # cheaper, quality kept
    assert pays(d(0.9, 0.899, 0.021))[0]
    assert trade_words(d(0.9, 0.899, 0.021)) == "-10.0% cost per completed task, -0.1 points " \
        "completion, +0.1 points defect rate"
    # cheaper but loses 2 points of completion
    assert pays(d(0.9, 0.88, 0.02)) == (False, "cheaper but loses completion")
    # dearer, buys 2.1 points of completion: the example
    assert pays(d(1.08, 0.921, 0.02))[0]
    assert trade_words(d(1.08, 0.921, 0.02)) == "+8.0% cost per completed task for +2.1 " \
        "points completion"
    # dearer, buys nothing (the bug: +55%, completion 100% -> 100%)
    ok, why = pays(d(1.55, 0.90, 0.02))
    assert not ok and why.startswith("dearer per completed task")
    # dearer, cuts defects by 0.6 points (30%): pays
    assert pays(d(1.05, 0.90, 0.014))[0]
    # dearer, cuts defects by 0.2 points only: does not
    assert not pays(d(1.05, 0.90, 0.018))[0]


@pytest.mark.parametrize("min_samples", [10**6])
def test_min_samples_gates_every_rule(tmp_path, min_samples):
    w = _workload(tmp_path, implement_d=80, gain=0.3)
    res = calibrate(_log(tmp_path, w, _policy(tmp_path), tasks=2000), prices=CAL_PRICES,
                    min_samples=min_samples)
    assert res.recommendations == []
    assert res.settings["min_samples"] == min_samples

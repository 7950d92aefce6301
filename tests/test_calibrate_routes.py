"""(b) A routed log built so the answers are known: raise bugfix/implement, lower docs/docs."""

from __future__ import annotations

import json
import math

import pytest
import yaml
from typer.testing import CliRunner

from calibrate_logs import CAL_PRICES, routed_log
from costsim.calibrate import calibrate, wilson
from costsim.cli import app

runner = CliRunner()


@pytest.fixture
def log(tmp_path):
    p = tmp_path / "runs.csv"
    routed_log().to_csv(p, index=False)
    return p


def _actions(recs):
    return {(r["task_type"], r["phase"]): r["action"] for r in recs}


def test_raise_the_reworking_budget_route_and_lower_the_idle_premium_one(log):
    res = runner.invoke(app, ["calibrate", str(log), "--prices", str(CAL_PRICES), "-f", "json"])
    assert res.exit_code == 0, res.output
    recs = json.loads(res.stdout)["recommendations"]
    assert _actions(recs) == {("bugfix", "implement"): "raise", ("docs", "docs"): "lower"}
    # never both actions on one (task type, phase)
    keys = [(r["task_type"], r["phase"]) for r in recs]
    assert len(keys) == len(set(keys))
    up = next(r for r in recs if r["action"] == "raise")
    assert (up["from_model"], up["to_model"]) == ("cheap", "mid")
    assert up["evidence"]["counts"]["first_attempts"] == 200
    assert up["evidence"]["rates"]["first_attempt_success"] == 0.3
    assert up["evidence"]["rates"]["retry_success"] == pytest.approx(60 / 140)   # 140 second tries by cheap, 60 succeed
    assert up["evidence"]["ci95"]["first_attempt_success"] == pytest.approx(list(wilson(60, 200)))
    down = next(r for r in recs if r["action"] == "lower")
    assert (down["from_model"], down["to_model"]) == ("top", "mid")
    ev = down["evidence"]
    assert ev["counts"] == {"from_first_attempts": 140, "to_first_attempts": 60}
    assert ev["rates"]["from_first_attempt_success"] == pytest.approx(0.9)
    assert ev["rates"]["to_first_attempt_success"] == pytest.approx(0.9)
    # the projection: premium -> midrange at equal success saves money, completion unchanged
    p = down["projected"]
    assert p["delta"] < 0
    assert p["completion_rate_after"] == pytest.approx(p["completion_rate_before"])
    assert up["projected"]["completion_rate_after"] >= up["projected"]["completion_rate_before"]


def test_lower_projection_by_hand(log):
    """docs is one phase, calls 1, 1000 in / 800 out, no system prompt, no cache. Fitted
    success: top [0.9, 1.0], mid [0.9, 1.0] (every second try succeeded); max 2 attempts.
    Attempt k bills (k-1)*1800 resent + 1000 new at input, 800 at output (SPEC §3.2).
    Observed route before: top then top (attempt 2 is seen most often on top, 14 vs 6)."""
    res = calibrate(log, prices=CAL_PRICES)
    down = next(r for r in res.recommendations if r["action"] == "lower")

    def cpct(inp, out):
        c1 = (1000 * inp + 800 * out) / 1e6
        c2 = (2800 * inp + 800 * out) / 1e6
        spend = c1 + 0.1 * c2
        return spend / (1 - 0.1 * 0.0)

    p = down["projected"]
    assert p["route_before"] == ["top", "top"] and p["route_after"] == ["mid", "mid"]
    assert p["cost_per_completed_task_before"] == pytest.approx(cpct(5.0, 25.0))
    assert p["cost_per_completed_task_after"] == pytest.approx(cpct(3.0, 15.0))
    assert p["delta"] == pytest.approx(cpct(3.0, 15.0) - cpct(5.0, 25.0))
    # workload-wide: docs is half the tasks; bugfix spend unchanged
    w = p["workload"]
    assert w["spend_per_task_before"] - w["spend_per_task_after"] == pytest.approx(
        0.5 * (cpct(5.0, 25.0) - cpct(3.0, 15.0)))


def test_raise_projection_uses_the_changed_route(log):
    res = calibrate(log, prices=CAL_PRICES)
    up = next(r for r in res.recommendations if r["action"] == "raise")
    p = up["projected"]
    # before: cheap, cheap, mid (as logged); after: cheap replaced by mid everywhere
    assert p["route_before"] == ["cheap", "cheap", "mid"]
    assert p["route_after"] == ["mid", "mid", "mid"]
    assert math.isfinite(p["cost_per_completed_task_after"])


def test_thresholds_and_min_samples_are_options(log):
    # with more samples required than the log has, nothing is recommended
    res = calibrate(log, prices=CAL_PRICES, min_samples=1000)
    assert res.recommendations == []
    # a raise threshold below the observed 30% first-try success: no raise
    res = calibrate(log, prices=CAL_PRICES, raise_below=0.25)
    assert _actions(res.recommendations) == {("docs", "docs"): "lower"}
    # a cheaper model must be no more than lower_max_gap worse: here the gap is 0, so any gap
    # passes; a min_samples above mid's 60 docs first attempts blocks the lower
    res = calibrate(log, prices=CAL_PRICES, min_samples=61)
    assert ("docs", "docs") not in _actions(res.recommendations)
    res = runner.invoke(app, ["calibrate", str(log), "--prices", str(CAL_PRICES),
                              "--raise-below", "0.2", "--min-samples", "10", "-f", "json"])
    assert res.exit_code == 0
    data = json.loads(res.stdout)
    assert data["settings"]["raise_below"] == 0.2 and data["settings"]["min_samples"] == 10
    assert _actions(data["recommendations"]) == {("docs", "docs"): "lower"}


def test_with_the_policy_the_log_came_from(log, tmp_path):
    pol = tmp_path / "pol.yaml"
    pol.write_text(yaml.safe_dump({
        "version": 1, "name": "team", "tiers": {"budget": "cheap", "midrange": "mid",
                                                "premium": "top"},
        "routes": {"default": "budget", "review": "premium", "docs": "premium"},
        "escalation": {"after_failures": 2}}))
    res = calibrate(log, prices=CAL_PRICES, policies=[pol])
    assert res.baseline == "policy team"
    assert _actions(res.recommendations) == {("bugfix", "implement"): "raise",
                                             ("docs", "docs"): "lower"}
    up = next(r for r in res.recommendations if r["action"] == "raise")
    # the modified policy routes implement to midrange: escalation takes it to premium
    assert up["projected"]["route_before"] == ["cheap", "cheap", "mid"]
    assert up["projected"]["route_after"] == ["mid", "mid", "top"]
    assert (up["from_tier"], up["to_tier"]) == ("budget", "midrange")


def test_review_rule_lowers_premium_reviews_that_change_nothing(tmp_path):
    df = routed_log()
    df["reviewer_changes"] = None
    review = (df["phase"] == "review")
    # 1 review in 40 leads to changes: 5 of 200 (< 10%)
    df.loc[review, "reviewer_changes"] = [1 if k % 40 == 0 else 0 for k in range(review.sum())]
    p = tmp_path / "runs.csv"
    df.to_csv(p, index=False)
    res = calibrate(p, prices=CAL_PRICES)
    acts = _actions(res.recommendations)
    assert acts[("bugfix", "review")] == "lower"
    rec = next(r for r in res.recommendations if r["phase"] == "review")
    assert (rec["from_model"], rec["to_model"]) == ("top", "mid")
    assert rec["evidence"]["counts"] == {"reviewed_tasks": 200, "changed": 5}
    assert rec["evidence"]["rates"]["reviewer_change_rate"] == pytest.approx(0.025)
    bugfix = next(r for r in res.by_task_type if r["task_type"] == "bugfix")
    assert bugfix["reviewer_change_rate"] == pytest.approx(0.025)
    assert bugfix["reviewed_tasks"] == 200


def test_conflict_keeps_raise_and_says_so(tmp_path):
    """A midrange route that fails often while a budget model fails just as often: raise wins."""
    rows = []
    for k in range(100):
        m = "mid" if k % 2 else "cheap"
        ok = k % 10 < 4          # 40% first-try success for both models
        rows.append({"task_id": f"t{k}", "task_type": "feature", "phase": "implement",
                     "attempt": 1, "model": m, "input_tokens": 100, "output_tokens": 10,
                     "success": ok})
        if not ok:
            rows.append({"task_id": f"t{k}", "task_type": "feature", "phase": "implement",
                         "attempt": 2, "model": "top", "input_tokens": 100,
                         "output_tokens": 10, "success": True})
    import pandas as pd

    p = tmp_path / "runs.csv"
    pd.DataFrame(rows).to_csv(p, index=False)
    res = calibrate(p, prices=CAL_PRICES, policies=[_pol(tmp_path)])
    assert _actions(res.recommendations) == {("feature", "implement"): "raise"}
    assert any("suppressed" in n for n in res.notes)


def _pol(tmp_path):
    pol = tmp_path / "mid.yaml"
    pol.write_text(yaml.safe_dump({
        "version": 1, "name": "mid", "tiers": {"budget": "cheap", "midrange": "mid",
                                               "premium": "top"},
        "routes": {"default": "midrange"}, "escalation": {"after_failures": 1}}))
    return pol


def test_table_and_markdown_render(log):
    for fmt in ("table", "markdown"):
        res = runner.invoke(app, ["calibrate", str(log), "--prices", str(CAL_PRICES),
                                  "-f", fmt])
        assert res.exit_code == 0, res.output
        assert "raise" in res.stdout and "lower" in res.stdout
        assert "bugfix" in res.stdout and "cheap + mid" in res.stdout

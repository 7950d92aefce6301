"""What calibrate fits, checked by hand on tiny logs and against the truth of simulated ones."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import yaml

from calibrate_logs import CAL_PRICES, PRICES, ROOT
from costsim.calibrate import calibrate

S, H = 1000, 0.5
A = {"n": 2, "in": 100, "out": 10}     # phase a: g = 110
B = {"n": 1, "in": 50, "out": 5}       # phase b: g = 55


def _calls(task, phase, k, model, inputs, ctxs, out, ok, h=H):
    return [{"task_id": task, "task_type": "t", "phase": phase, "attempt": k, "model": model,
             "call": j + 1, "input_tokens": x, "cached_input_tokens": round(h * c),
             "output_tokens": out, "success": ok} for j, (x, c) in enumerate(zip(inputs, ctxs))]


def _hand_log(summary=False, h=H, model="cheap"):
    """Two tasks worked by hand (the cost model's token rules):
    phase a, attempt 1, call j: input = S + (j-1)*110 + 100; attempt 2 resends 2*110 first.
    phase b: prior = 2*110 (full history) or the summary's 30 tokens."""
    rows = []
    prior_b = 30 if summary else 2 * 110
    for task, fails in (("t1", 1), ("t2", 0)):
        for k in range(1, fails + 2):
            retry = (k - 1) * 2 * 110
            ctx = [S + retry, S + retry + 110]
            rows += _calls(task, "a", k, model, [c + 100 for c in ctx], ctx, 10, k == fails + 1,
                           h)
        if summary:
            rows.append({"task_id": task, "task_type": "t", "phase": "a", "attempt": fails + 1,
                         "model": model, "call": 1, "kind": "summary",
                         "input_tokens": S + (fails + 1) * 2 * 110, "cached_input_tokens": 0,
                         "output_tokens": 30, "success": None})
        rows += _calls(task, "b", 1, model, [S + prior_b + 50], [S + prior_b], 5, True, h)
    return pd.DataFrame(rows)


def _per_attempt(df):
    att = df[df.get("kind", pd.Series("attempt", index=df.index)).fillna("attempt") != "summary"]
    g = att.groupby(["task_id", "task_type", "phase", "attempt", "model"], sort=False).agg(
        input_tokens=("input_tokens", "sum"), cached_input_tokens=("cached_input_tokens", "sum"),
        output_tokens=("output_tokens", "sum"), success=("success", "last"),
        calls=("call", "count")).reset_index()
    return g


@pytest.mark.parametrize("rows", ["call", "attempt"])
def test_tokens_read_back_exactly(tmp_path, rows):
    df = _hand_log()
    if rows == "attempt":
        df = _per_attempt(df)
    p = tmp_path / "runs.csv"
    df.to_csv(p, index=False)
    res = calibrate(p, prices=CAL_PRICES)
    w = res.workload_data
    assert w["system_tokens"] == S and w["cache_hit_rate"] == H
    (a, b) = w["task_types"][0]["phases"]
    assert (a["phase"], a["calls"], a["input_tokens"], a["output_tokens"]) == ("a", 2, 100, 10)
    assert (b["phase"], b["calls"], b["input_tokens"], b["output_tokens"]) == ("b", 1, 50, 5)
    assert res.fitted["runs"][""]["retry_context"] == "full"
    assert res.fitted["runs"][""]["handoff"] == "full_history"
    assert res.fitted["token_fit_residual"] < 1e-6


def test_summary_handoff_read_back_exactly(tmp_path):
    p = tmp_path / "runs.csv"
    _hand_log(summary=True).to_csv(p, index=False)
    res = calibrate(p, prices=CAL_PRICES)
    assert res.fitted["runs"][""] == {"handoff": "summary", "summary_tokens": 30,
                                      "summarizer": "cheap", "retry_context": "full"}
    (a, b) = res.workload_data["task_types"][0]["phases"]
    assert (a["input_tokens"], b["input_tokens"], res.workload_data["system_tokens"]) == \
        (100, 50, S)
    assert res.policy_data is None or res.policy_data.get("handoff", {}).get("mode") == "summary"


def test_retries_that_do_not_resend_read_as_retry_context_none(tmp_path):
    df = _hand_log()
    first = df[(df["phase"] == "a") & (df["attempt"] == 1) & (df["task_id"] == "t1")]
    second = df.index[(df["phase"] == "a") & (df["attempt"] == 2)]
    df.loc[second, "input_tokens"] = first["input_tokens"].to_numpy()
    df.loc[second, "cached_input_tokens"] = first["cached_input_tokens"].to_numpy()
    p = tmp_path / "runs.csv"
    df.to_csv(p, index=False)
    res = calibrate(p, prices=CAL_PRICES)
    assert res.fitted["runs"][""]["retry_context"] == "none"
    assert res.workload_data["system_tokens"] == S


def _lc_prices(tmp_path):
    d = yaml.safe_load(CAL_PRICES.read_text())
    d["models"]["cheap"]["long_context"] = {"above": 1200, "input": 10.0, "output": 20.0}
    p = tmp_path / "lc.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def test_long_context_rates_per_call_and_per_attempt(tmp_path):
    """cheap: input $1, output $2 per 1M; above 1,200 input tokens the whole call is billed
    at $10 / $20. No cache (h = 0) so the per-attempt split of the calls is exact.
    Phase a's calls: 1100, 1210 | retry: 1320, 1430; phase b: 1270."""
    prices = _lc_prices(tmp_path)
    df = _hand_log(h=0.0)
    base = lambda i, o: (i * 1.0 + o * 2.0) / 1e6          # noqa: E731
    lc = lambda i, o: (i * 10.0 + o * 20.0) / 1e6          # noqa: E731
    t1 = base(1100, 10) + lc(1210, 10) + lc(1320, 10) + lc(1430, 10) + lc(1270, 5)
    t2 = base(1100, 10) + lc(1210, 10) + lc(1270, 5)
    for rows in ("call", "attempt"):
        p = tmp_path / f"{rows}.csv"
        (df if rows == "call" else _per_attempt(df)).to_csv(p, index=False)
        res = calibrate(p, prices=prices)
        assert res.overall["spend"] == pytest.approx(t1 + t2, rel=1e-9), rows
        assert res.overall["cost_per_completed_task"] == pytest.approx((t1 + t2) / 2, rel=1e-9)


# --- simulated logs: the fit against the truth --------------------------------------------------

@pytest.fixture(scope="module")
def medium(tmp_path_factory):
    """20,000 tasks of the bundled medium-team workload under cheapest-routing."""
    from logsim import simulate_log, write_log

    d = tmp_path_factory.mktemp("medium")
    p = d / "runs.parquet"
    write_log(simulate_log(PRICES, ROOT / "workloads" / "medium-team.yaml",
                           ROOT / "policies" / "cheapest-routing.yaml", tasks=20_000, seed=11,
                           rows="attempt"), p)
    return calibrate(p, prices=PRICES)


def test_feedback_gain_is_fitted_across_phases_not_pooled(medium):
    """The truth is 0.63 in every phase; pooling retries over phases of different difficulty
    gave 0.0-0.5."""
    gain, se = medium.fitted["feedback_gain"], medium.fitted["feedback_gain_se"]
    assert abs(gain - 0.63) < max(4 * se, 0.02)


def test_difficulty_of_a_model_seen_after_escalation_is_not_read_as_a_first_try(medium):
    """bugfix/implement: midrange (claude-sonnet-5) starts, claude-opus-5 makes attempts 3-4.
    The fitted difficulty puts both where the truth (73.5) does."""
    w = medium.workload_data
    imp = next(p for t in w["task_types"] if t["name"] == "bugfix" for p in t["phases"]
               if p["phase"] == "implement")
    assert abs(imp["difficulty"] - 73.5) < 1.0
    assert "success" not in imp
    # Read as first tries, opus' successes at attempts 3-4 would say a difficulty 8 lower.
    opus = next(r for r in medium.by_model if (r["task_type"], r["phase"], r["model"]) ==
                ("bugfix", "implement", "claude-opus-5"))
    p = opus["retry_success"]
    naive = 78.0 - 10 * math.log(p / (1 - p))
    assert imp["difficulty"] - naive > 6


def test_signals_shares_and_difficulty(medium):
    """Workload-level signals, and docs' own block (cross_file 0.30/4, ambiguous 0.10/4)."""
    w = medium.workload_data
    truth = {"security_sensitive": (0.08, 10), "cross_file": (0.35, 8), "ambiguous": (0.15, 6),
             "architecture": (0.05, 12)}
    for s, (share, d) in truth.items():
        assert abs(w["signals"][s]["share"] - share) < 0.015, s
        assert abs(w["signals"][s]["difficulty"] - d) < 2.0, s
    docs = next(t for t in w["task_types"] if t["name"] == "docs")
    assert set(docs["signals"]) == {"cross_file", "ambiguous"}
    assert abs(docs["signals"]["cross_file"]["share"] - 0.30) < 0.03


def test_review_success_map_and_what_comes_from_the_base_workload(medium):
    w = medium.workload_data
    rev = next(p for t in w["task_types"] if t["name"] == "feature" for p in t["phases"]
               if p["phase"] == "review")
    assert medium.fitted["success_form"]["feature/review"] == "map"
    first = rev["success"]["claude-opus-5"]
    first = first[0] if isinstance(first, list) else first
    assert abs(first - 0.97) < 0.01
    # the log shows only premium reviews: the other classes come from the base workload
    assert (rev["success"]["budget"], rev["success"]["midrange"]) == (0.9, 0.95)
    fields = [f for f, _ in medium.from_base]
    assert "feature/review success[budget, midrange]" in fields
    text = medium.workload_yaml()
    assert "# Not shown by the log, taken from the base workload (--workload):" in text
    assert "#   feature/review success[budget, midrange]:" in text


def test_defect_rates_reproduce_the_log(medium):
    """Only rate x (1 - catch) is identified: the most frequent reviewer's catch rate stays the
    base workload's and the rates follow; the engine's defect rate matches the log's."""
    d = medium.fitted["defects"]
    assert d["anchor"] == ["claude-opus-5", 0.7] or d["anchor"] == ("claude-opus-5", 0.7)
    assert abs(d["rate"]["claude-sonnet-5"] - 0.05) < 0.012
    row = next(r for r in medium.fit if r["scope"] == "all tasks")
    assert abs(row["engine_defect_rate"] - row["measured_defect_rate"]) < 0.003


def test_max_attempts_and_volume(medium):
    w = medium.workload_data
    assert w["max_attempts"] == 4
    # 20,000 tasks over 61 days
    assert abs(w["tasks_per_month"] - 20_000 / 61 * 30.4375) / w["tasks_per_month"] < 0.02

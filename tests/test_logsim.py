"""tests/logsim.py, the runs-log simulator: exact rows by hand, row formats, and agreement with
tests/reference_model.py's exact expectations within sampling error (with and without §3.5
variation)."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import integrate, optimize, special

import logsim
import reference_model as ref

ROOT = Path(__file__).parent.parent
BUNDLED_PRICES = ROOT / "pricing" / "default.yaml"
K_SE = 4.0      # agreement within 4 standard errors


def _yaml(path):
    return yaml.safe_load(Path(path).read_text())


def prices(**models):
    return {"version": 1, "as_of": "2026-11-20", "currency": "USD", "models": models}


def model(tier, inp, out, cr=None, score=None, lc=None):
    m = {"provider": "p", "tier": tier, "input": inp, "output": out}
    if cr is not None:
        m["cache_read"] = cr
    if score is not None:
        m["coding_score"] = score
    if lc is not None:
        m["long_context"] = lc
    return m


def agree(measured: dict, exact: dict, keys=("spend_per_task", "completion_rate",
                                               "cost_per_completed_task", "defect_rate")):
    for k in keys:
        m, se, x = measured[k], measured[k + "_se"], exact[k]
        assert se > 0 or m == x, (k, m, se)
        assert abs(m - x) <= K_SE * se, f"{k}: measured {m:.6g} ± {se:.2g}, exact {x:.6g}"


# --- a tiny workload worked by hand ---------------------------------------------------------------

HAND_PRICES = prices(a=model("budget", 2.0, 10.0, 0.5), b=model("premium", 4.0, 20.0, 1.0))


def hand_docs(retry_context="full", mode="summary", catch=0.0):
    """implement: a always fails, then b always succeeds; review: a succeeds at once."""
    wl = {"version": 1, "name": "hand", "max_attempts": 2, "system_tokens": 1000,
          "cache_hit_rate": 0.5,
          "signals": {"cross_file": {"share": 1.0, "difficulty": 0}},
          "defects": {"phases": ["implement"], "rate": {"b": 1.0}, "catch_rate": {"a": catch}},
          "task_types": [{"name": "t", "share": 1.0, "phases": [
              {"phase": "implement", "calls": 2, "input_tokens": 1000, "output_tokens": 100,
               "success": {"a": 0.0, "b": 1.0}},
              {"phase": "review", "calls": 1, "input_tokens": 500, "output_tokens": 200,
               "success": {"a": 1.0, "b": 1.0}}]}]}
    pol = {"version": 1, "name": "hand", "tiers": {"lo": "a", "hi": "b"},
           "routes": {"default": "lo"},
           "escalation": {"after_failures": 1, "retry_context": retry_context},
           "handoff": {"mode": mode, "summary_tokens": 300, "summarizer": "hi"}}
    return wl, pol


# (phase, attempt, call, kind, model, input, cached, output, success, cost in micro-USD)
# implement: ctx_j = 1000 + retry + (j-1)*1100; h = 0.5.  summary: b reads 1000 + k*2200 (full)
# or 1000 + 2200 (none), writes 300, no cache.  review: ctx 1000 + prior (300 summary).
HAND_ROWS = {
    "full": [
        ("implement", 1, 1, "attempt", "a", 2000, 500, 100, True, 250 + 1000 + 2000 + 1000),
        ("implement", 1, 2, "attempt", "a", 3100, 1050, 100, True, 525 + 2100 + 2000 + 1000),
        ("implement", 2, 1, "attempt", "b", 4200, 1600, 100, True, 1600 + 6400 + 4000 + 2000),
        ("implement", 2, 2, "attempt", "b", 5300, 2150, 100, True, 2150 + 8600 + 4000 + 2000),
        ("implement", 2, 1, "summary", "b", 5400, 0, 300, None, 5400 * 4 + 300 * 20),
        ("review", 1, 1, "attempt", "a", 1800, 650, 200, True, 325 + 1300 + 1000 + 2000),
    ],
    "none": [
        ("implement", 1, 1, "attempt", "a", 2000, 500, 100, True, 4250),
        ("implement", 1, 2, "attempt", "a", 3100, 1050, 100, True, 5625),
        ("implement", 2, 1, "attempt", "b", 2000, 500, 100, True, 8500),
        ("implement", 2, 2, "attempt", "b", 3100, 1050, 100, True, 11250),
        ("implement", 2, 1, "summary", "b", 3200, 0, 300, None, 3200 * 4 + 300 * 20),
        ("review", 1, 1, "attempt", "a", 1800, 650, 200, True, 4625),
    ],
}
HAND_SUCCESS = [False, False, True, True, None, True]


@pytest.mark.parametrize("retry_context", ["full", "none"])
def test_hand_worked_rows(retry_context):
    wl, pol = hand_docs(retry_context)
    df = logsim.simulate_log(HAND_PRICES, wl, pol, tasks=3, cost=True, seed=5)
    assert list(df.columns) == ["task_id", "task_type", "phase", "attempt", "call", "kind",
                                "model", "input_tokens", "cached_input_tokens", "output_tokens",
                                "success", "signals", "reviewer_changes", "timestamp",
                                "cost_usd"]
    assert df["timestamp"].is_monotonic_increasing
    for tid, rows in df.groupby("task_id"):
        rows = rows.sort_values("timestamp")
        want = HAND_ROWS[retry_context]
        got = list(zip(rows.phase, rows.attempt, rows.call, rows.kind, rows.model,
                       rows.input_tokens, rows.cached_input_tokens, rows.output_tokens))
        assert got == [w[:8] for w in want]
        assert [None if pd.isna(x) else bool(x) for x in rows.success] == HAND_SUCCESS
        assert rows.cost_usd.to_numpy() == pytest.approx([w[9] / 1e6 for w in want], rel=1e-12)
        assert list(rows.signals) == ["cross_file"] * 6
        # defect by b in implement, review by a catches nothing: one change, on the last row
        assert rows.reviewer_changes.isna().tolist() == [True] * 5 + [False]
        assert rows.reviewer_changes.iloc[-1] == 1
        gaps = rows.timestamp.diff().dropna().dt.total_seconds()
        assert (gaps == logsim.CALL_GAP_S).all()


def test_hand_worked_attempt_rows_and_catch():
    wl, pol = hand_docs("full", catch=1.0)
    df = logsim.simulate_log(HAND_PRICES, wl, pol, tasks=2, rows="attempt", cost=True)
    one = df[df.task_id == df.task_id.iloc[0]]
    assert list(zip(one.phase, one.attempt, one.calls, one.kind, one.input_tokens,
                    one.cached_input_tokens, one.output_tokens)) == [
        ("implement", 1, 2, "attempt", 5100, 1550, 200),
        ("implement", 2, 2, "attempt", 9500, 3750, 200),
        ("implement", 2, 1, "summary", 5400, 0, 300),
        ("review", 1, 1, "attempt", 1800, 650, 200)]
    assert one.cost_usd.to_numpy() == pytest.approx([9875e-6, 30750e-6, 27600e-6, 4625e-6])
    # first call of each attempt: 0, 2, 4 (the summary), 5 calls after arrival
    offsets = (one.timestamp - one.timestamp.iloc[0]).dt.total_seconds().tolist()
    assert offsets == [0, 2 * logsim.CALL_GAP_S, 4 * logsim.CALL_GAP_S, 5 * logsim.CALL_GAP_S]
    assert one.reviewer_changes.iloc[-1] == 0          # the review caught the defect


def test_full_history_has_no_summary_rows():
    wl, pol = hand_docs("full", mode="full_history")
    df = logsim.simulate_log(HAND_PRICES, wl, pol, tasks=2, rows="attempt")
    assert set(df.kind) == {"attempt"}
    # review resends the transcript of one implement attempt: ctx 1000 + 2200
    review = df[df.phase == "review"]
    assert (review.input_tokens == 1000 + 2200 + 500).all()


# --- row formats ----------------------------------------------------------------------------------

def corner_docs(long=True):
    px = prices(cheap=model("budget", 1.0, 2.0, 0.1, score=50,
                            lc={"above": 5200, "output": 3.0} if long else None),
                mid=model("midrange", 3.0, 15.0, 0.3, score=70,
                          lc={"above": 9000, "input": 6.0} if long else None),
                top=model("premium", 5.0, 25.0, 0.5, score=80,
                          lc={"above": 12000, "input": 10.0, "output": 37.5, "cache_read": 1.0}))
    phases = [
        {"phase": "search", "calls": 2, "input_tokens": 1500, "output_tokens": 200,
         "difficulty": 30},
        {"phase": "implement", "calls": 3, "input_tokens": 2000, "output_tokens": 700,
         "difficulty": 65},
        {"phase": "review", "calls": 1, "input_tokens": 2500, "output_tokens": 300,
         "difficulty": 45, "success": {"premium": [0.8, 0.99], "budget": 0.4}},
    ]
    wl = {"version": 1, "name": "corner", "max_attempts": 3, "system_tokens": 1000,
          "cache_hit_rate": 0.6, "feedback_gain": 0.4,
          "signals": {"cross_file": {"share": 0.4, "difficulty": 5},
                      "security_sensitive": {"share": 0.2, "difficulty": 10}},
          "defects": {"phases": ["implement"], "rate": {"budget": 0.1, "midrange": 0.05},
                      "catch_rate": {"premium": 0.6}},
          "task_types": [
              {"name": "bugfix", "share": 0.7, "phases": phases},
              {"name": "docs", "share": 0.3, "max_attempts": 2, "signals": {},
               "phases": [{"phase": "docs", "calls": 2, "input_tokens": 500,
                           "output_tokens": 900, "difficulty": 60}]}]}
    pol = {"version": 1, "name": "three",
           "tiers": {"budget": "cheap", "midrange": "mid", "premium": "top"},
           "routes": {"default": "midrange", "search": "budget", "review": "premium"},
           "escalation": {"after_failures": 2},
           "signals": {"cross_file": {"raise": 1, "phases": ["implement"]},
                       "security_sensitive": {"min_tier": "premium", "phases": ["search"]}},
           "handoff": {"mode": "summary", "summary_tokens": 3000, "summarizer": "midrange"}}
    return px, wl, pol


def test_per_call_rows_sum_to_the_per_attempt_rows_of_the_same_seed():
    px, wl, pol = corner_docs()
    wl["variation"] = {"difficulty": 1.0, "tokens": 0.8, "tokens_follow_difficulty": 0.5}
    kw = dict(tasks=2000, seed=11, cost=True)
    calls = logsim.simulate_log(px, wl, [pol, "single:mid"], rows="call", **kw)
    att = logsim.simulate_log(px, wl, [pol, "single:mid"], rows="attempt", **kw)
    keys = ["run", "task_id", "phase", "attempt", "kind"]
    summed = calls.groupby(keys, sort=True).agg(
        calls=("call", "size"), last_call=("call", "max"), model=("model", "first"),
        input_tokens=("input_tokens", "sum"), cached=("cached_input_tokens", "sum"),
        output_tokens=("output_tokens", "sum"), success=("success", "first"),
        cost=("cost_usd", "sum"), timestamp=("timestamp", "min"))
    per = att.set_index(keys).sort_index()
    assert len(summed) == len(per) > 2000
    assert (summed.calls == per.calls).all() and (summed.last_call == per.calls).all()
    for a, b in (("model", "model"), ("input_tokens", "input_tokens"),
                 ("cached", "cached_input_tokens"), ("output_tokens", "output_tokens"),
                 ("timestamp", "timestamp")):
        assert (summed[a] == per[b]).all(), a
    assert summed.success.astype("boolean").equals(per.success.astype("boolean"))
    assert np.allclose(summed.cost, per.cost_usd, rtol=1e-12, atol=0)
    assert (per.xs("summary", level="kind").calls == 1).all()


def test_summary_rows_only_in_summary_mode_and_their_shape():
    px, wl, pol = corner_docs()
    df = logsim.simulate_log(px, wl, pol, tasks=1500, rows="attempt")
    summ = df[df.kind == "summary"]
    assert len(summ) > 0 and summ.success.isna().all()
    assert (summ.model == "mid").all() and (summ.calls == 1).all()
    assert (summ.cached_input_tokens == 0).all() and (summ.output_tokens == 3000).all()
    # after search (2 calls of 1700) at attempt k: 1000 + k*2*1700; never after the last phase
    s = summ[summ.phase == "search"]
    assert (s.input_tokens == 1000 + s.attempt * 3400).all()
    assert set(summ.phase) == {"search", "implement"}
    # each summary follows a successful attempt of the same task, phase and attempt number
    ok = df[(df.kind == "attempt") & df.success.fillna(False).astype(bool)]
    assert set(zip(summ.task_id, summ.phase, summ.attempt)) <= \
        set(zip(ok.task_id, ok.phase, ok.attempt))
    pol2 = copy.deepcopy(pol)
    pol2["handoff"] = {"mode": "full_history"}
    assert set(logsim.simulate_log(px, wl, pol2, tasks=300).kind) == {"attempt"}


def test_reviewer_changes_success_and_signal_placements():
    px, wl, pol = corner_docs()
    kw = dict(tasks=1500, seed=3)
    base = logsim.simulate_log(px, wl, pol, **kw)
    outcome = logsim.task_outcomes(base, px).set_index("task_id")
    # last row: one value per completed task, none for abandoned tasks
    has = base[base.reviewer_changes.notna()]
    assert has.task_id.is_unique
    assert set(has.task_id) == set(outcome.index[outcome.completed])
    last_rows = base.groupby("task_id").tail(1)
    assert set(has.index) <= set(last_rows.index)
    assert 0 < (has.reviewer_changes > 0).sum() < len(has)
    # on review rows instead: same counts, on every attempt row of the review phase
    rev = logsim.simulate_log(px, wl, pol, changes_on="review", **kw)
    on = rev[rev.reviewer_changes.notna()]
    assert (on.phase == "review").all() and (on.kind == "attempt").all()
    done_review = rev[(rev.phase == "review") & rev.task_id.isin(has.task_id)]
    assert len(on) == len(done_review)
    per_task = on.groupby("task_id").reviewer_changes.agg(["min", "max"])
    assert (per_task["min"] == per_task["max"]).all()
    bugfix_done = has[has.task_type == "bugfix"].set_index("task_id").reviewer_changes
    assert per_task["max"].sort_index().equals(bugfix_done.sort_index())
    assert "reviewer_changes" not in logsim.simulate_log(px, wl, pol, changes_on="none", **kw)
    # success on the last call only: same outcomes
    last = logsim.simulate_log(px, wl, pol, success_on="last", **kw)
    att = last[last.kind == "attempt"]
    grp = att.groupby(["task_id", "phase", "attempt"])
    assert (grp.call.transform("max") == att.call).eq(att.success.notna()).all()
    assert logsim.measure_log(last, px)["completion_rate"] == \
        logsim.measure_log(base, px)["completion_rate"]
    # signals: every row, first row only, or no column
    first = logsim.simulate_log(px, wl, pol, signals_on="first", **kw)
    assert first.signals.notna().sum() == first.task_id.nunique()
    firsts = first.groupby("task_id").head(1)
    assert firsts.signals.notna().all()
    per = base.groupby("task_id").signals.agg(["nunique", "first"])
    assert (per["nunique"] == 1).all()
    assert per["first"].sort_index().equals(firsts.set_index("task_id").signals.sort_index())
    assert set(per["first"]) == {"", "cross_file", "security_sensitive",
                                 "cross_file;security_sensitive"}
    assert "signals" not in logsim.simulate_log(px, wl, pol, signals_on="none", **kw)


def test_signal_shares_and_routing_by_signal():
    px, wl, pol = corner_docs()
    df = logsim.simulate_log(px, wl, pol, tasks=6000, rows="attempt", seed=2)
    t = df[df.task_type == "bugfix"].groupby("task_id").signals.first()
    n = len(t)
    for name, share in (("cross_file", 0.4), ("security_sensitive", 0.2)):
        got = t.str.contains(name).mean()
        assert abs(got - share) <= K_SE * math.sqrt(share * (1 - share) / n)
    first = df[(df.kind == "attempt") & (df.attempt == 1)]
    search = first[first.phase == "search"]
    # security_sensitive: min_tier premium in search only; cross_file raises implement only
    assert (search.model == np.where(search.signals.str.contains("security"), "top",
                                     "cheap")).all()
    impl = first[first.phase == "implement"]
    assert (impl.model == np.where(impl.signals.str.contains("cross"), "top", "mid")).all()
    # escalation after two failures: attempt 3 of implement one tier up
    third = df[(df.phase == "implement") & (df.attempt == 3) & (df.kind == "attempt")]
    assert len(third) and (third.model == "top").all()


def test_assign_split_switch_and_runs():
    px, wl, pol = corner_docs()
    strategies = [pol, "single:mid", "single:top"]
    kw = dict(tasks=3000, rows="attempt", seed=9)
    alldf = logsim.simulate_log(px, wl, strategies, **kw)
    per_task = alldf.groupby("task_id").run.nunique()
    assert (per_task == 3).all() and len(per_task) == 3000
    split = logsim.simulate_log(px, wl, strategies, assign="split", **kw)
    runs = split.groupby("task_id").run.agg(["nunique", "first"])
    assert (runs["nunique"] == 1).all() and len(runs) == 3000
    counts = runs["first"].value_counts()
    assert set(counts.index) == {"three", "single:mid", "single:top"}
    assert (abs(counts - 1000) <= K_SE * math.sqrt(3000 * 2 / 9)).all()
    switch = logsim.simulate_log(px, wl, strategies[:2], assign="switch", **kw)
    start = switch.groupby("task_id").agg(t=("timestamp", "min"), run=("run", "first"))
    start = start.sort_values("t")
    assert start.run.iloc[:1500].eq("three").all() and start.run.iloc[1500:].eq("single:mid").all()
    # a single strategy has no run column unless asked
    assert "run" not in logsim.simulate_log(px, wl, pol, tasks=10)
    assert "run" in logsim.simulate_log(px, wl, pol, tasks=10, run_column=True)


def test_months_volume_and_timestamps():
    px, wl, pol = corner_docs()
    wl["tasks_per_month"] = {"mean": 400, "cv": 0.5}
    df = logsim.simulate_log(px, wl, pol, months=24, rows="attempt", seed=4,
                             start="2026-01-01T00:00:00Z")
    first = df.groupby("task_id").timestamp.min()
    per_month = first.dt.tz_localize(None).dt.to_period("M").value_counts().sort_index()
    assert per_month.index.min() == pd.Period("2026-01") and per_month.index.max() <= \
        pd.Period("2027-12")
    counts = per_month.reindex(pd.period_range("2026-01", "2027-12", freq="M"), fill_value=0)
    # gamma-Poisson: mean 400, variance 400 + (0.5 * 400)^2 = 40400
    assert abs(counts.mean() - 400) <= K_SE * math.sqrt(40400 / 24)
    assert 0.35 < counts.std() / 400 < 0.75
    wl["tasks_per_month"] = 300
    df = logsim.simulate_log(px, wl, pol, months=12, rows="attempt", seed=4)
    counts = df.groupby("task_id").timestamp.min().dt.tz_localize(None).dt.to_period("M") \
        .value_counts()
    assert len(counts) == 12 and counts.std() < 3 * math.sqrt(300)


@pytest.mark.parametrize("ext", ["csv", "csv.gz", "jsonl", "jsonl.gz", "parquet"])
def test_write_and_read_back(tmp_path, ext):
    px, wl, pol = corner_docs()
    df = logsim.simulate_log(px, wl, [pol, "single:mid"], tasks=300, cost=True,
                             signals_on="first", success_on="last")
    path = tmp_path / f"log.{ext}"
    logsim.write_log(df, path)
    back = logsim.read_log(path)
    assert list(back.columns) == list(df.columns) and len(back) == len(df)
    a, b = logsim.measure_log(df), logsim.measure_log(path)
    for k in ("tasks", "spend_per_task", "completion_rate", "defect_rate"):
        assert a[k] == pytest.approx(b[k], rel=1e-12)
    if ext.startswith(("csv", "jsonl")):
        text = (back.timestamp.astype(str)).iloc[0]
        assert text.endswith("Z") and "T" in text and pd.Timestamp(text) == df.timestamp.iloc[0]


def test_measure_log_prices_rows_like_cost_usd():
    px, wl, pol = corner_docs()
    wl["variation"] = {"tokens": 0.9, "tokens_follow_difficulty": 0.3}
    df = logsim.simulate_log(px, wl, pol, tasks=1000, cost=True)
    priced = logsim.task_outcomes(df.drop(columns="cost_usd"), px)
    own = logsim.task_outcomes(df)
    assert np.allclose(priced.spend, own.spend, rtol=1e-12, atol=0)
    att = logsim.simulate_log(px, wl, pol, tasks=10, rows="attempt")
    with pytest.raises(ValueError, match="long-context"):
        logsim.measure_log(att, px)


# --- agreement with the reference, no variation --------------------------------------------------

def test_bundled_small_team_agrees_with_the_reference():
    px = _yaml(BUNDLED_PRICES)
    wl = _yaml(ROOT / "workloads" / "small-team.yaml")
    # this section is the no-variation check: the bundled workloads now carry a measured
    # variation (agreement under variation is the next section's, at several spreads)
    wl.pop("variation", None)
    for tt in wl["task_types"]:
        tt.pop("variation", None)
    pols = [_yaml(p) for p in sorted((ROOT / "policies").glob("*.yaml"))]
    strategies = pols + ["single:deepseek-v4-flash"]
    df = logsim.simulate_log(px, wl, strategies, tasks=8_000, rows="attempt", cost=True,
                             seed=1)
    got = logsim.measure_log(df)["by_run"]
    assert len(got) == len(strategies) == 6
    for pol in pols:
        agree(got[pol["name"]], ref.evaluate(px, wl, policy=pol))
    agree(got["single:deepseek-v4-flash"], ref.evaluate(px, wl, model="deepseek-v4-flash"))


@pytest.mark.parametrize("handoff, retry_context, after", [
    ({"mode": "full_history"}, "full", 1),
    ({"mode": "summary", "summary_tokens": 3000, "summarizer": "midrange"}, "full", 2),
    ({"mode": "summary", "summary_tokens": 3000, "summarizer": "midrange"}, "none", 1),
    ({"mode": "summary", "summary_tokens": 5000}, "none", 2),      # first tier summarizes
])
def test_corners_agree_with_the_reference(handoff, retry_context, after):
    """Long-context thresholds crossed inside phases and by the summarizer, signals with
    min_tier/raise/phases, escalation, retry context, defects caught in review; per-call rows
    priced from the table by measure_log."""
    px, wl, pol = corner_docs()
    pol["handoff"] = handoff
    pol["escalation"] = {"after_failures": after, "retry_context": retry_context}
    df = logsim.simulate_log(px, wl, [pol, "single:cheap"], tasks=15_000, seed=7)
    got = logsim.measure_log(df, px)["by_run"]
    agree(got["three"], ref.evaluate(px, wl, policy=pol))
    agree(got["single:cheap"], ref.evaluate(px, wl, model="cheap"))


def test_long_context_really_bites_in_the_corners():
    px, wl, pol = corner_docs()
    plain = ref.evaluate(corner_docs(long=False)[0], wl, policy=pol)["spend_per_task"]
    assert ref.evaluate(px, wl, policy=pol)["spend_per_task"] > plain * 1.05


# --- with variation ----------------------------------------------------------------------------

@pytest.mark.parametrize("var", [
    {"difficulty": 1.3, "tokens": 0.7, "tokens_follow_difficulty": 0.5},
    {"difficulty": 2.5},
    {"tokens": 1.0},
    {"difficulty": 1.0, "tokens": 0.8, "tokens_follow_difficulty": 1.0},
])
def test_truth_agrees_with_the_reference_under_variation(var):
    px, wl, pol = corner_docs()
    pol["escalation"] = {"after_failures": 1, "retry_context": "full"}
    wl["variation"] = var
    wl["task_types"][1]["variation"] = {"difficulty": 0.5, "tokens": 0.4}
    truth = logsim.simulate_truth(px, wl, pol, tasks=150_000, seed=2)
    agree(truth, ref.evaluate(px, wl, policy=pol))


def test_variation_changes_the_exact_numbers():
    """Guard for the test above: the spreads move the expectations by many standard errors."""
    px, wl, pol = corner_docs()
    pol["escalation"] = {"after_failures": 1, "retry_context": "full"}
    plain = ref.evaluate(px, wl, policy=pol)
    wl["variation"] = {"difficulty": 1.3, "tokens": 0.7, "tokens_follow_difficulty": 0.5}
    varied = ref.evaluate(px, wl, policy=pol)
    truth = logsim.simulate_truth(px, wl, pol, tasks=150_000, seed=2)
    for k in ("spend_per_task", "completion_rate"):
        assert abs(varied[k] - plain[k]) > 10 * truth[k + "_se"], k


def _b(p, s):
    mean = lambda b: integrate.quad(lambda z: special.expit(b - s * z) * math.exp(-z * z / 2),
                                    -40, 40)[0] / math.sqrt(2 * math.pi)
    return optimize.brentq(lambda b: mean(b) - p, -60, 60, xtol=1e-12)


@pytest.mark.parametrize("s", [0.5, 2.5, 10.0])
def test_solve_b_keeps_the_rate(s):
    p = np.array([0.0, 1e-6, 0.03, 0.5, 0.97, 1.0])
    b = logsim.solve_b(p, s)
    assert b[0] == -np.inf and b[-1] == np.inf
    for pi, bi in zip(p[1:-1], b[1:-1]):
        assert _mean_sigmoid(bi, s) == pytest.approx(pi, rel=1e-9)


def _mean_sigmoid(b, s):
    return integrate.quad(lambda z: special.expit(b - s * z) * math.exp(-z * z / 2), -40, 40,
                          points=[b / s], epsabs=1e-16, epsrel=1e-12, limit=200)[0] \
        / math.sqrt(2 * math.pi)


def one_phase(success, K, **kw):
    px = prices(a=model("budget", 1.0, 2.0), b=model("premium", 5.0, 25.0))
    wl = {"version": 1, "name": "one", "max_attempts": K, "system_tokens": 0,
          "task_types": [{"name": "t", "share": 1.0, "phases": [
              {"phase": "implement", "calls": 1, "input_tokens": 1000, "output_tokens": 100,
               "success": success}]}]}
    wl.update(kw)
    return px, wl


def test_rates_over_all_tasks_keep_their_meaning_and_retries_see_the_hard_tasks():
    """s = 2.5: the first attempt still succeeds for 30% of tasks, but the second, on the
    tasks the first failed, succeeds far less than its 60% (by the integral, not by the
    simulator's own code)."""
    s = 2.5
    px, wl = one_phase({"a": [0.3, 0.6]}, K=2, variation={"difficulty": s})
    df = logsim.simulate_log(px, wl, "single:a", tasks=40_000, rows="attempt", seed=8)
    first = df[df.attempt == 1].success.astype(bool)
    assert abs(first.mean() - 0.3) <= K_SE * math.sqrt(0.21 / len(first))
    b1, b2 = _b(0.3, s), _b(0.6, s)
    phi = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    both = integrate.quad(lambda z: (1 - special.expit(b1 - s * z)) * special.expit(b2 - s * z)
                          * phi(z), -40, 40)[0]
    cond = both / 0.7
    second = df[df.attempt == 2].success.astype(bool)
    assert cond < 0.5
    assert abs(second.mean() - cond) <= K_SE * math.sqrt(cond * (1 - cond) / len(second))


@pytest.mark.parametrize("s", [0.0, 2.0])
def test_second_run_fails_where_the_first_failed(s):
    """Two runs of the same tasks (assign="all") share z: with s > 0 the second run fails more
    often where the first failed, by the amount the integral gives; with s = 0 they are
    independent."""
    px, wl = one_phase({"a": 0.5, "b": 0.7}, K=1, variation={"difficulty": s})
    df = logsim.simulate_log(px, wl, ["single:a", "single:b"], tasks=30_000, rows="attempt",
                             seed=6)
    ok = df.pivot(index="task_id", columns="run", values="success").astype(bool)
    a_failed = ~ok["single:a"]
    got = (~ok["single:b"][a_failed]).mean()
    if s == 0:
        expect = 0.3
    else:
        ba, bb = _b(0.5, s), _b(0.7, s)
        expect = integrate.quad(lambda z: (1 - special.expit(ba - s * z))
                                * (1 - special.expit(bb - s * z)) * math.exp(-z * z / 2),
                                -40, 40)[0] / math.sqrt(2 * math.pi) / 0.5
        assert expect > 0.45
    n = a_failed.sum()
    assert abs(got - expect) <= K_SE * math.sqrt(expect * (1 - expect) / n)


def test_token_spread_keeps_the_mean_and_runs_share_the_size():
    """t = 0.8 (s = 0, so the path does not depend on z): tokens per task average the
    no-variation count, their log has spread t, and two runs of a task use the same u."""
    t = 0.8
    px, wl = one_phase({"a": 1.0, "b": 1.0}, K=1,
                       variation={"tokens": t, "tokens_follow_difficulty": 0.6})
    df = logsim.simulate_log(px, wl, ["single:a", "single:b"], tasks=20_000, rows="attempt",
                             seed=12)
    tok = df.pivot(index="task_id", columns="run", values="input_tokens")
    assert (tok["single:a"] == tok["single:b"]).all()
    x = tok["single:a"].to_numpy(float)
    assert abs(x.mean() - 1000) <= K_SE * x.std() / math.sqrt(len(x))
    assert np.log(x).std() == pytest.approx(t, rel=0.03)
    out = df.pivot(index="task_id", columns="run", values="output_tokens")["single:a"]
    assert np.allclose(out, x / 10, atol=0.51 + x / 2000)    # one u for every count


def test_simulate_log_and_truth_measure_the_same_thing():
    px, wl, pol = corner_docs()
    wl["variation"] = {"difficulty": 1.3, "tokens": 0.7, "tokens_follow_difficulty": 0.5}
    m = logsim.measure_log(logsim.simulate_log(px, wl, pol, tasks=12_000, rows="attempt",
                                               cost=True, seed=21))
    agree(m, ref.evaluate(px, wl, policy=pol))

"""The replay engine (compare --engine replay): hand-worked logs, exact reproduction of the runs
a log records (tests/logsim.py's logs checked row by row against its own task outcomes), and
agreement with tests/logsim.py's simulate_truth within sampling error when the log pairs runs of
every model, with and without task variation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import logsim
from costsim.api import compare
from costsim.cli import app
from costsim.engine.compile import Strategy
from costsim.engine.replay import (bootstrap, max_attempts, metrics, prepare, replay_strategy)
from costsim.loader import load_policy, load_prices, load_workload
from costsim.logs.attempts import read_attempts
from helpers import invoke_at_widths

FIX = Path(__file__).parent / "fixtures"
PRICES = FIX / "prices.yaml"
runner = CliRunner()

# --- a one-phase cascade worked by hand -----------------------------------------------------------

# Two configs ran the same four tasks once each (the OpenHands kind of data).
CASCADE_LOG = """\
run,task_id,task_type,phase,attempt,model,input_tokens,output_tokens,success,cost_usd
single:cheap,t1,bugfix,implement,1,cheap,100,10,true,1.0
single:cheap,t2,bugfix,implement,1,cheap,100,10,false,2.0
single:cheap,t3,bugfix,implement,1,cheap,100,10,false,1.5
single:cheap,t4,bugfix,implement,1,cheap,100,10,true,0.5
single:top,t1,bugfix,implement,1,top,100,10,true,5.0
single:top,t2,bugfix,implement,1,top,100,10,true,6.0
single:top,t3,bugfix,implement,1,top,100,10,false,7.0
single:top,t4,bugfix,implement,1,top,100,10,false,4.0
"""
CASCADE = {"version": 1, "name": "cascade", "tiers": {"budget": "cheap", "premium": "top"},
           "routes": {"default": "budget"},
           "escalation": {"after_failures": 1, "retry_context": "none"}}


def _workload(max_attempts=2, handoff=None, phases=("implement",)):
    d = {"version": 1, "name": "w", "max_attempts": max_attempts,
         "task_types": [{"name": "bugfix", "share": 1.0, "phases": [
             {"phase": p, "calls": 1, "input_tokens": 100, "output_tokens": 10,
              "difficulty": 50} for p in phases]}]}
    if handoff:
        d["handoff"] = handoff
    return d


def _files(tmp_path, log_text, policies=(), workload=None):
    log = tmp_path / "runs.csv"
    log.write_text(log_text)
    pols = []
    for i, p in enumerate(policies):
        pols.append(tmp_path / f"policy{i}.yaml")
        pols[-1].write_text(yaml.safe_dump(p))
    wl = None
    if workload is not None:
        wl = tmp_path / "workload.yaml"
        wl.write_text(yaml.safe_dump(workload))
    return log, pols, wl


def test_cascade_worked_by_hand(tmp_path):
    log, pols, wl = _files(tmp_path, CASCADE_LOG, [CASCADE], _workload(2))
    r = compare(PRICES, pols, wl, engine="replay", log=log, bootstrap=200)
    c = r.get("cascade")
    # t1: cheap 1.0 ok; t2: cheap 2.0 fails, top 6.0 ok; t3: 1.5 + 7.0, both fail; t4: 0.5 ok
    assert c.spend_per_task == pytest.approx(18.0 / 4)
    assert c.completion_rate == pytest.approx(0.75)
    assert c.cost_per_completed_task == pytest.approx(18.0 / 3)
    assert c.expected_attempts == pytest.approx(6 / 4)
    assert c.expected_retries == pytest.approx(2 / 4)
    assert c.spend_by_model == pytest.approx({"cheap": 5.0 / 4, "top": 13.0 / 4})
    assert c.premium_share == pytest.approx(13.0 / 18.0)
    assert c.defect_rate is None and c.review_minutes is None
    rp = c.extra["replay"]
    assert (rp["tasks"], rp["covered"], rp["left_out"]) == (4, 4, [])
    # per-task spend 1.0, 8.0, 8.5, 0.5: percentiles by linear interpolation
    assert rp["cost_percentiles"]["p50"] == pytest.approx(4.5)
    assert rp["cost_percentiles"]["p90"] == pytest.approx(8.0 + 0.7 * 0.5)
    # a single model takes its own second record for a second attempt: the log has none, so
    # its failed tasks are left out and counted
    s = r.get("single:cheap")
    assert s.extra["replay"]["covered"] == 2
    assert s.extra["replay"]["left_out"] == [
        {"phase": "implement", "model": "cheap", "missing": "attempt", "tasks": 2}]
    assert s.cost_per_completed_task == pytest.approx(0.75)
    assert r.get("cascade").savings is None    # its reference ran on other tasks


def test_max_attempts_from_the_log_without_a_workload(tmp_path):
    log, pols, _ = _files(tmp_path, CASCADE_LOG, [CASCADE])
    r = compare(PRICES, pols, engine="replay", log=log, bootstrap=0)
    assert r.settings["max_attempts"]["from"] == "log"
    s = r.get("single:cheap")          # one attempt each: every task covered
    assert s.extra["replay"]["covered"] == 4
    assert s.cost_per_completed_task == pytest.approx(5.0 / 2)
    assert r.get("cascade").cost_per_completed_task == pytest.approx(5.0 / 2)


# --- two phases, summaries, signals, escalation, per-call rows -------------------------------------

ROUTED = {"version": 1, "name": "routed",
          "tiers": {"budget": "cheap", "midrange": "mid", "premium": "top"},
          "routes": {"default": "budget", "implement": "midrange"},
          "escalation": {"after_failures": 2},
          "signals": {"security_sensitive": {"min_tier": "premium", "phases": ["implement"]}},
          "handoff": {"mode": "summary", "summary_tokens": 100, "summarizer": "budget"}}
# a: plan by cheap in two calls (success on the last call only), its summary, implement by mid
#    failing twice, then top (escalated after two failures) succeeding: 0.1+0.2+0.05+1+1.2+3.
# b: security_sensitive (said on its first row only): implement starts on top: 0.3+0.05+2.5.
# c: plan fails twice on cheap, then on mid (escalated): abandoned, 0.3.
ROUTED_LOG = """\
run,task_id,task_type,phase,attempt,call,kind,model,input_tokens,output_tokens,success,cost_usd,signals
routed,a,bugfix,plan,1,1,attempt,cheap,10,1,,0.1,
routed,a,bugfix,plan,1,2,attempt,cheap,10,1,true,0.2,
routed,a,bugfix,plan,1,1,summary,cheap,10,1,,0.05,
routed,a,bugfix,implement,1,1,attempt,mid,10,1,false,1.0,
routed,a,bugfix,implement,2,1,attempt,mid,10,1,false,1.2,
routed,a,bugfix,implement,3,1,attempt,top,10,1,true,3.0,
routed,b,bugfix,plan,1,1,attempt,cheap,10,1,true,0.3,security_sensitive
routed,b,bugfix,plan,1,1,summary,cheap,10,1,,0.05,
routed,b,bugfix,implement,1,1,attempt,top,10,1,true,2.5,
routed,c,bugfix,plan,1,1,attempt,cheap,10,1,false,0.1,
routed,c,bugfix,plan,2,1,attempt,cheap,10,1,false,0.1,
routed,c,bugfix,plan,3,1,attempt,mid,10,1,false,0.1,
"""


def test_routed_policy_worked_by_hand(tmp_path):
    log, pols, wl = _files(tmp_path, ROUTED_LOG, [ROUTED], _workload(3, phases=("plan",
                                                                                "implement")))
    r = compare(PRICES, pols, wl, engine="replay", log=log, bootstrap=0)
    c = r.get("routed")
    assert c.spend_per_task == pytest.approx((5.55 + 2.85 + 0.3) / 3)
    assert c.completion_rate == pytest.approx(2 / 3)
    assert c.cost_per_completed_task == pytest.approx(8.7 / 2)
    assert c.expected_attempts == pytest.approx(9 / 3)
    assert c.expected_retries == pytest.approx(4 / 3)
    assert c.summary_calls == pytest.approx(2 / 3)
    assert c.spend_by_model == pytest.approx({"cheap": 0.9 / 3, "mid": 2.3 / 3, "top": 5.5 / 3})
    phases = {p["phase"]: p for p in c.phases}
    assert list(phases) == ["plan", "implement"]       # running order, not file order of names
    assert phases["plan"]["reach_rate"] == pytest.approx(1.0)
    assert phases["plan"]["success_rate"] == pytest.approx(2 / 3)
    assert phases["implement"]["reach_rate"] == pytest.approx(2 / 3)
    assert phases["implement"]["attempts_per_reach"] == pytest.approx(4 / 2)
    assert c.extra["replay"]["covered"] == 3
    # single:top has no plan record at all: left out, with a warning that says why
    assert all(s.name != "single:top" for s in r.strategies)
    assert any("single:top left out" in w and "top on plan" in w for w in r.warnings)


def test_full_history_strategy_uses_no_summary_and_summary_needs_its_summarizer(tmp_path):
    full = dict(ROUTED, name="full", handoff={"mode": "full_history"})
    other = dict(ROUTED, name="other-summarizer",
                 handoff={"mode": "summary", "summary_tokens": 100, "summarizer": "midrange"})
    log, pols, wl = _files(tmp_path, ROUTED_LOG, [full, other],
                           _workload(3, phases=("plan", "implement")))
    r = compare(PRICES, pols, wl, engine="replay", log=log, bootstrap=0)
    assert r.get("full").spend_per_task == pytest.approx((5.5 + 2.8 + 0.3) / 3)
    o = r.get("other-summarizer")
    # a and b need a summary by mid after plan: none recorded; c never passes plan
    assert o.extra["replay"]["covered"] == 1
    assert o.extra["replay"]["left_out"] == [
        {"phase": "plan", "model": "mid", "missing": "summary", "tasks": 2}]


def test_run_named_like_the_strategy_is_read_first(tmp_path):
    # a single:mid run listed first has mid succeed on a's implement at once (0.9)
    extra = ("single:mid,a,bugfix,plan,1,1,attempt,mid,10,1,true,0.4,\n"
             "single:mid,a,bugfix,implement,1,1,attempt,mid,10,1,true,0.9,\n")
    head, body = ROUTED_LOG.split("\n", 1)
    text = head + "\n" + extra + body
    renamed = dict(ROUTED, name="renamed")
    log, pols, wl = _files(tmp_path, text, [ROUTED, renamed],
                           _workload(3, phases=("plan", "implement")))
    r = compare(PRICES, pols, wl, engine="replay", log=log, bootstrap=0)
    # routed reads its own run first: the recorded cascade exactly
    assert r.get("routed").spend_per_task == pytest.approx((5.55 + 2.85 + 0.3) / 3)
    # renamed reads runs in log order: mid's first implement record of a is the 0.9 success
    assert r.get("renamed").spend_per_task == pytest.approx((0.35 + 0.9 + 2.85 + 0.3) / 3)


# --- exact reproduction of simulated logs ----------------------------------------------------------

def _docs(variation=True):
    px = yaml.safe_load(PRICES.read_text())
    wl = {"version": 1, "name": "sim", "max_attempts": 3, "system_tokens": 500,
          "cache_hit_rate": 0.5, "feedback_gain": 0.3,
          "signals": {"cross_file": {"share": 0.4, "difficulty": 6},
                      "security_sensitive": {"share": 0.15, "difficulty": 10}},
          "task_types": [
              {"name": "bugfix", "share": 0.7, "phases": [
                  {"phase": "search", "calls": 2, "input_tokens": 800, "output_tokens": 100,
                   "difficulty": 35},
                  {"phase": "implement", "calls": 3, "input_tokens": 1500, "output_tokens": 600,
                   "difficulty": 70},
                  {"phase": "review", "calls": 1, "input_tokens": 2000, "output_tokens": 300,
                   "success": {"budget": 0.7, "premium": [0.9, 0.97]}, "difficulty": 50}]},
              {"name": "docs", "share": 0.3, "signals": {}, "phases": [
                  {"phase": "docs", "calls": 2, "input_tokens": 600, "output_tokens": 700,
                   "difficulty": 55}]}]}
    if variation:
        wl["variation"] = {"difficulty": 1.2, "tokens": 0.7, "tokens_follow_difficulty": 0.5}
    pol = {"version": 1, "name": "three",
           "tiers": {"budget": "cheap", "midrange": "mid", "premium": "top"},
           "routes": {"default": "midrange", "search": "budget", "review": "premium"},
           "escalation": {"after_failures": 2},
           "signals": {"cross_file": {"raise": 1, "phases": ["implement"]},
                       "security_sensitive": {"min_tier": "premium"}},
           "handoff": {"mode": "summary", "summary_tokens": 400, "summarizer": "budget"}}
    return px, wl, pol


def _load(tmp_path, px, wl, pols):
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(px))
    (tmp_path / "w.yaml").write_text(yaml.safe_dump(wl))
    out = []
    for i, p in enumerate(pols):
        (tmp_path / f"pol{i}.yaml").write_text(yaml.safe_dump(p))
        out.append(load_policy(tmp_path / f"pol{i}.yaml"))
    return load_prices(tmp_path / "p.yaml"), load_workload(tmp_path / "w.yaml"), out


@pytest.mark.parametrize("rows,ext,cost", [("call", "csv", True), ("attempt", "parquet", False),
                                           ("attempt", "jsonl", True)])
def test_replaying_the_strategies_that_made_a_log_reproduces_every_task(tmp_path, rows, ext,
                                                                        cost):
    pytest.importorskip("pyarrow")
    px, wl, pol = _docs()
    if not cost:        # priced from the table: no long-context rates to split per call
        px["models"]["top"].pop("long_context")
    strategies = [pol, "single:mid"]
    df = logsim.simulate_log(px, wl, strategies, tasks=1500, seed=3, rows=rows, cost=cost,
                             signals_on="first")
    path = tmp_path / f"log.{ext}"
    logsim.write_log(df, path)
    table, workload, (policy,) = _load(tmp_path, px, wl, [pol])
    rlog = prepare(read_attempts(path, table))
    K = max_attempts(rlog, workload)
    truth = logsim.task_outcomes(df, px if not cost else None).set_index(["run", "task_id"])
    for strat, summarizer in ((Strategy.routed(policy), "cheap"), (Strategy.single("mid"), None)):
        out = replay_strategy(rlog, strat, K, summarizer)
        assert out.covered.all()
        want = truth.loc[strat.name].reindex(rlog.tasks)
        assert out.completed.tolist() == want["completed"].tolist()
        np.testing.assert_allclose(out.spend, want["spend"].to_numpy(), rtol=1e-9, atol=1e-15)
        # every record of the strategy's own run used once, no other
        own = np.flatnonzero(np.array(rlog.run_names)[rlog.r_run] == strat.name)
        assert sorted(out.used.tolist()) == own.tolist()


# --- agreement with the cost model within sampling error -----------------------------------------

K_SE = 4.0


def _paired_docs(s):
    """A hard implement phase after a plan every model passes; summaries by cheap. Runs of
    one-tier policies (retry_context none, like the cascade) give paired outcomes per model."""
    px = yaml.safe_load(PRICES.read_text())
    wl = {"version": 1, "name": "paired", "max_attempts": 3, "system_tokens": 300,
          "cache_hit_rate": 0.4, "feedback_gain": 0.0,
          "handoff": {"mode": "summary", "summary_tokens": 500, "summarizer": "cheap"},
          "variation": {"difficulty": s, "tokens": 0.8 if s else 0.0,
                        "tokens_follow_difficulty": 0.6},
          "task_types": [{"name": "bugfix", "share": 1.0, "phases": [
              {"phase": "plan", "calls": 1, "input_tokens": 1000, "output_tokens": 300,
               "success": {"cheap": 1.0, "mid": 1.0, "top": 1.0}},
              {"phase": "implement", "calls": 4, "input_tokens": 1500, "output_tokens": 500,
               "success": {"cheap": 0.45, "mid": 0.6, "top": 0.8}}]}]}

    def one(model):
        return {"version": 1, "name": f"only-{model}", "tiers": {"only": model},
                "routes": {"default": "only"}, "escalation": {"retry_context": "none"},
                "handoff": {"mode": "summary", "summary_tokens": 500, "summarizer": "cheap"}}

    cascade = {"version": 1, "name": "cascade",
               "tiers": {"budget": "cheap", "midrange": "mid", "premium": "top"},
               "routes": {"default": "budget"},
               "escalation": {"after_failures": 1, "retry_context": "none"},
               "handoff": {"mode": "summary", "summary_tokens": 500, "summarizer": "budget"}}
    return px, wl, [one("cheap"), one("mid"), one("top")], cascade


def _se(spend, done):
    n = spend.size
    C, E = done.mean(), spend.mean()
    R = E / C
    return {"spend_per_task": (E, spend.std(ddof=1) / math.sqrt(n)),
            "completion_rate": (C, math.sqrt(C * (1 - C) / n)),
            "cost_per_completed_task": (R, (spend - R * done).std(ddof=1) / math.sqrt(n) / C)}


def _replayed_cascade(tmp_path, s, runs_used, *, tasks, seed):
    """A paired log of ``_paired_docs(s)`` (only the runs at ``runs_used``), simulated by
    logsim, and the cascade replayed on it: (frame, replayed log, result)."""
    px, wl, runs, cascade = _paired_docs(s)
    df = logsim.simulate_log(px, wl, [runs[i] for i in runs_used], tasks=tasks, seed=seed,
                             rows="attempt", cost=True)
    path = tmp_path / "log.csv"
    logsim.write_log(df, path)
    table, workload, (casc,) = _load(tmp_path, px, wl, [cascade])
    rlog = prepare(read_attempts(path, table))
    return df, rlog, replay_strategy(rlog, Strategy.routed(casc), max_attempts(rlog, workload),
                                     "cheap")


@pytest.mark.parametrize("s", [0.0, 1.5])
def test_replay_agrees_with_the_cost_model_on_paired_runs(tmp_path, s):
    px, wl, runs, cascade = _paired_docs(s)
    _, _, out = _replayed_cascade(tmp_path, s, range(len(runs)), tasks=12_000, seed=7)
    assert out.covered.all()
    got = _se(out.spend, out.completed.astype(float))
    truth = logsim.simulate_truth(px, wl, cascade, tasks=200_000, seed=1)
    for k, (m, se) in got.items():
        tol = K_SE * math.hypot(se, truth[k + "_se"])
        assert abs(m - truth[k]) <= tol, (k, m, truth[k], tol)
    if s:
        # the test can tell: independent coins (no spread) are far outside these errors
        px0, wl0, _, _ = _paired_docs(0.0)
        coins = logsim.simulate_truth(px0, wl0, cascade, tasks=200_000, seed=1)
        m, se = got["completion_rate"]
        assert coins["completion_rate"] - m > 10 * se


def test_bootstrap_intervals_match_the_normal_approximation_and_the_seed(tmp_path):
    _, rlog, out = _replayed_cascade(tmp_path, 1.5, range(3), tasks=4000, seed=2)
    iv = bootstrap([out], 2000, seed=5)[0]
    assert bootstrap([out], 2000, seed=5)[0] == iv
    assert bootstrap([out], 2000, seed=6)[0] != iv
    for k, (m, se) in _se(out.spend, out.completed.astype(float)).items():
        lo, hi = iv[k]
        assert lo < m < hi
        # a 95% interval is about +-1.96 standard errors wide (10% slack for 2000 resamples)
        assert (hi - lo) / (2 * 1.96 * se) == pytest.approx(1.0, abs=0.1), k
    met = metrics(rlog, out)
    assert met.covered == rlog.n_tasks


# --- coverage of a log that lacks records ------------------------------------------------------

def test_coverage_counts_the_tasks_lacking_a_record(tmp_path):
    # only cheap and top ran: the cascade's midrange attempt has no record after a cheap failure
    df, rlog, out = _replayed_cascade(tmp_path, 1.0, (0, 2), tasks=3000, seed=4)
    t = logsim.task_outcomes(df).set_index(["run", "task_id"])
    cheap_ok = t.loc["only-cheap"].reindex(rlog.tasks)["completed"].to_numpy(bool)
    # covered exactly when cheap's first implement attempt succeeded
    first = df[(df.run == "only-cheap") & (df.phase == "implement") & (df.attempt == 1)
               & (df.kind == "attempt")].set_index("task_id")["success"].astype(bool)
    want = first.reindex(rlog.tasks).to_numpy(bool)
    assert out.covered.tolist() == want.tolist()
    assert (out.completed == want).all() and cheap_ok[want].all()
    assert [(x.phase, x.model, x.what, x.tasks) for x in out.lacks] == [
        ("implement", "mid", "attempt", int((~want).sum()))]


# --- the command ---------------------------------------------------------------------------------

def test_cli_table_and_json(tmp_path):
    log, pols, wl = _files(tmp_path, CASCADE_LOG, [CASCADE], _workload(2))
    args = ["compare", "--engine", "replay", "--log", str(log), "--prices", str(PRICES),
            "--policy", str(pols[0]), "--workload", str(wl)]
    outs = invoke_at_widths(runner, app, args)        # fits 80, 120 and 200 columns
    for text in outs.values():
        assert "Replay of" in text and "95% interval" in text
        assert "left out" in text and "cheap attempt on implement (2)" in text
    # the replay figures of the cascade: covered, interval, percentiles
    row = [line for line in outs[200].splitlines() if line.startswith("cascade")][1]
    assert "100.0%" in row and "$8.3500" in row and "$8.4850" in row
    res = runner.invoke(app, args + ["--format", "json", "--bootstrap", "300", "--seed", "3"])
    data = json.loads(res.output)
    assert data["engine"] == "replay" and data["settings"]["bootstrap"] == 300
    c = next(s for s in data["strategies"] if s["name"] == "cascade")
    assert c["cost_per_completed_task"] == pytest.approx(6.0)
    assert c["defect_rate"] is None
    lo, hi = c["replay"]["intervals"]["completion_rate"]
    assert 0.0 <= lo <= 0.75 <= hi <= 1.0
    for fmt in ("markdown", "csv"):
        res = runner.invoke(app, args + ["--format", fmt])
        assert res.exit_code == 0 and "cascade" in res.output


@pytest.mark.parametrize("extra,needle", [
    ([], "--engine replay and --log LOG go together"),
    (["--engine", "analytic", "--log", "LOG"], "--engine replay and --log LOG go together"),
    (["--engine", "replay", "--log", "LOG", "--pareto", "70"], "cannot be replayed"),
])
def test_cli_errors_are_one_line(tmp_path, extra, needle):
    log, pols, wl = _files(tmp_path, CASCADE_LOG, [CASCADE], _workload(2))
    args = ["compare", "--prices", str(PRICES), "--policy", str(pols[0])]
    if not extra:
        extra = ["--engine", "replay"]
    args += [str(log) if a == "LOG" else a for a in extra]
    res = runner.invoke(app, args)
    assert res.exit_code == 2
    assert needle in res.output and len(res.output.strip().splitlines()) == 1


@pytest.mark.parametrize("text,where", [
    (CASCADE_LOG + "single:top,t4,bugfix,implement,1,top,100,10,false,4.0\n",
     "runs.csv:10: attempt: attempt 1 of task 't4' phase 'implement' appears twice"),
    (CASCADE_LOG.replace("t3,bugfix,implement,1,top", "t3,docs,implement,1,top"),
     "runs.csv:8: task_type: task 't3' already appeared with task type 'bugfix'"),
    (CASCADE_LOG.replace("100,10,true,5.0", "100,10,maybe,5.0"),
     "runs.csv:6: success: expected a boolean"),
])
def test_bad_logs_are_located(tmp_path, text, where):
    log, pols, wl = _files(tmp_path, text, [CASCADE], _workload(2))
    res = runner.invoke(app, ["compare", "--engine", "replay", "--log", str(log), "--prices",
                              str(PRICES), "--policy", str(pols[0])])
    assert res.exit_code == 2
    assert where in res.output


def test_the_readme_example_log_replays_its_own_runs():
    log = Path(__file__).parent.parent / "docs" / "examples" / "replay-runs.csv"
    r = compare(policies=["two-tier"], engine="replay", log=log, bootstrap=0)
    truth = logsim.measure_log(log)["by_run"]
    for name in ("single:deepseek-v4-flash", "single:claude-sonnet-5", "single:claude-opus-5"):
        s = r.get(name)
        assert s.extra["replay"]["coverage"] == 1.0
        assert s.completion_rate == pytest.approx(truth[name]["completion_rate"], rel=1e-12)
        assert s.spend_per_task == pytest.approx(truth[name]["spend_per_task"], rel=1e-9)
    assert r.get("two-tier").extra["replay"]["coverage"] == 1.0


# --- real records: an OpenHands excerpt (tests/fixtures/openhands_excerpt.csv) --------------------

def test_openhands_cascade_replayed_through_the_command(tmp_path):
    """Four configs ran the same 60 swt-bench instances. As a runs log (run = model = config,
    one phase, one attempt), the replayed cascade equals the cascade computed from the records
    with pandas, and the records show the correlation independent coins miss."""
    import pandas as pd

    rec = pd.read_csv(FIX / "openhands_excerpt.csv")
    log = pd.DataFrame({"run": rec.config, "task_id": rec.instance, "task_type": rec.benchmark,
                        "phase": "solve", "attempt": 1, "model": rec.config,
                        "input_tokens": 0, "output_tokens": 0, "success": rec.resolved,
                        "cost_usd": rec.cost_usd})
    log.to_csv(tmp_path / "runs.csv", index=False)
    cheap, dear = "results/DeepSeek-V3.2-Reasoner", "results/GPT-5.2"
    px = {"version": 1, "as_of": "2026-06-30", "models": {
        c: {"provider": "x", "tier": "premium" if c == dear else "budget", "input": 1.0,
            "output": 1.0} for c in rec.config.unique()}}
    pol = dict(CASCADE, tiers={"budget": cheap, "premium": dear})
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(px))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(pol))
    (tmp_path / "w.yaml").write_text(yaml.safe_dump(_workload(2, phases=("solve",))))
    res = runner.invoke(app, ["compare", "--engine", "replay", "--log", str(tmp_path / "runs.csv"),
                              "--prices", str(tmp_path / "p.yaml"), "--policy",
                              str(tmp_path / "c.yaml"), "--workload", str(tmp_path / "w.yaml"),
                              "--format", "json", "--bootstrap", "0"])
    assert res.exit_code == 0, res.output
    got = {s["name"]: s for s in json.loads(res.stdout)["strategies"]}
    c = rec.pivot(index="instance", columns="config", values="cost_usd")
    ok = rec.pivot(index="instance", columns="config", values="resolved").astype(bool)
    spend = c[cheap] + c[dear].where(~ok[cheap], 0.0)
    done = ok[cheap] | ok[dear]
    assert got["cascade"]["spend_per_task"] == pytest.approx(spend.mean(), rel=1e-12)
    assert got["cascade"]["completion_rate"] == pytest.approx(done.mean(), rel=1e-12)
    assert got["cascade"]["cost_per_completed_task"] == pytest.approx(spend.sum() / done.sum(),
                                                                      rel=1e-12)
    assert got["cascade"]["replay"]["covered"] == 60
    for m in (cheap, dear):   # a second attempt needs a second record: only successes covered
        s = got[f"single:{m}"]
        assert s["replay"]["covered"] == ok[m].sum()
        assert s["spend_per_task"] == pytest.approx(c[m][ok[m]].mean(), rel=1e-12)
    # independent coins: 1 - (1 - 0.567)(1 - 0.8) = 0.913 against 0.85 replayed
    coins = 1 - (1 - ok[cheap].mean()) * (1 - ok[dear].mean())
    assert coins - done.mean() > 0.05

"""`costsim optimize`: the space is sized before it is built, dominated models are dropped only
when that provably changes nothing, large route grids are split into blocks, and single models
and given policies compete with the searched policies. Prices are USD per 1M tokens."""

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

import costsim.search.optimize as O
from costsim.cli import app
from costsim.engine.analytic import evaluate
from costsim.engine.compile import Strategy, compile_ladders
from costsim.errors import CostsimError
from costsim.loader import load_policy, load_prices, load_workload, prices_from_dict
from costsim.search.optimize import Search, optimize, policy_from_doc
from costsim.search.space import dominated, model_profile

from helpers import model, policy, prices, workload, write

runner = CliRunner()


def engine(table, wl, doc):
    return evaluate(compile_ladders(table, Strategy.routed(policy_from_doc(doc)), wl))


# --- sized before built: a 3,000-model table -----------------------------------------------------

def big_table(n_per_class=1000, seed=0, tier_success=False):
    """A price table of 3 x n_per_class models with distinct prices (and distinct coding
    scores unless ``tier_success``: then success comes from tier-keyed maps)."""
    rng = np.random.default_rng(seed)
    models = {}
    for cls, lo in (("budget", 0.1), ("midrange", 1.0), ("premium", 5.0)):
        for j in range(n_per_class):
            inp = float(np.round(lo * rng.uniform(1, 4), 4))
            kw = {} if tier_success else {"coding_score": 40 + 0.04 * j}      # all distinct
            models[f"{cls}-{j:04d}"] = model(tier=cls, input=inp,
                                             output=float(np.round(inp * rng.uniform(3, 6), 4)),
                                             cache_read=float(np.round(inp / 10, 5)), **kw)
    return prices_from_dict(prices(models))


def three_tier_inputs(tmp_path, table, *, success=None, base=None):
    ph = [{"phase": "search", "calls": 2, "input_tokens": 1000, "output_tokens": 100,
           "difficulty": 30},
          {"phase": "implement", "calls": 3, "input_tokens": 2000, "output_tokens": 500,
           "difficulty": 60}]
    if success:
        for p in ph:
            p["success"] = success
    w = load_workload(write(tmp_path, "w.yaml", workload(
        [{"name": "t", "share": 1.0, "phases": ph}], max_attempts=3, feedback_gain=0.4)))
    first = base or {cls: next(m for m in table.models if m.startswith(cls))
                     for cls in ("budget", "midrange", "premium")}
    pol = load_policy(write(tmp_path, "pol.yaml", policy(first, {"default": "midrange"})))
    return w, pol


def test_huge_space_is_refused_before_any_combination_is_built(tmp_path, monkeypatch):
    table = big_table()
    wl, pol = three_tier_inputs(tmp_path, table)
    built = []
    monkeypatch.setattr(O.Space, "combos", lambda self, a, b: built.append((a, b)))
    with pytest.raises(CostsimError) as err:
        optimize(table, pol, wl)
    msg = str(err.value)
    # 1000^3 model combinations x 3 after_failures x 2 handoffs x 3^2 routes
    assert "54,000,000,000 policies" in msg
    assert "narrow it with --candidates" in msg and "--max-policies" in msg
    assert "budget 1,000; midrange 1,000; premium 1,000" in msg
    assert "\n" not in msg
    assert built == []


def test_dominated_models_leave_the_space_and_it_is_searched(tmp_path):
    # success from tier-keyed maps: every model of a class succeeds alike, so a model another
    # one of its class undercuts on every rate is dropped; what remains is small enough
    table = big_table(tier_success=True, seed=1)
    wl, pol = three_tier_inputs(tmp_path, table,
                                success={"budget": 0.6, "midrange": 0.8, "premium": 0.9})
    r = optimize(table, pol, wl, min_completion=0.99)
    kept = r.space["tier_models"]
    assert 1 <= sum(len(v) for v in kept.values()) < 60
    # the survivors of each class are exactly its price-Pareto set (input, output, cache_read)
    for cls, ids in kept.items():
        ms = {m: p for m, p in table.models.items() if p.tier == cls}
        def beaten(m):
            a = ms[m]
            return any(b.input <= a.input and b.output <= a.output
                       and b.cache_read <= a.cache_read
                       and (b.input, b.output, b.cache_read) != (a.input, a.output, a.cache_read)
                       for o, b in ms.items() if o != m)
        assert set(ids) == {m for m in ms if not beaten(m)}
    assert any("dropped candidates" in n for n in r.notes)
    assert r.feasible


def test_pruning_changes_no_answer(tmp_path):
    # models of one class with equal coding scores and ordered prices, plus one that is
    # cheaper on input but dearer on output (not dominated); same targets -> same optimum and
    # the same frontiers with and without pruning
    ms = {"b1": model(tier="budget", input=0.2, output=1.0, coding_score=55),
          "b2": model(tier="budget", input=0.3, output=1.2, coding_score=55),    # b1 dominates
          "b3": model(tier="budget", input=0.1, output=1.5, coding_score=55),    # trade-off
          "b4": model(tier="budget", input=0.2, output=1.0, coding_score=55),    # equal to b1
          "m1": model(tier="midrange", input=2.0, output=8.0, coding_score=70),
          "m2": model(tier="midrange", input=2.0, output=8.0, coding_score=72),  # better, same $
          "p1": model(tier="premium", input=5.0, output=25.0, coding_score=80,
                      long_context={"above": 5000, "input": 10.0}),
          "p2": model(tier="premium", input=5.0, output=25.0, coding_score=80)}  # p2 dominates p1
    table = load_prices(write(tmp_path, "p.yaml", prices(ms)))
    wl, pol = three_tier_inputs(tmp_path, table,
                                base={"budget": "b2", "midrange": "m1", "premium": "p1"})
    prof = model_profile(table, wl, sorted(ms))
    order = sorted(ms)
    assert dominated(prof, order, [ms[m]["tier"] for m in order]) == {
        "b2": "b1", "b4": "b1", "p1": "p2"}
    for kw in ({}, {"min_completion": 0.97}, {"max_defect_rate": 0.0}):
        a = optimize(table, pol, wl, **kw)
        b = optimize(table, pol, wl, prune=False, **kw)
        assert a.evaluated * 4 == b.evaluated        # b1 b3 x m1 m2 x p2 vs 4 x 2 x 2
        assert a.best.cost_per_completed_task == pytest.approx(
            b.best.cost_per_completed_task, rel=1e-12)
        for fa, fb in ((a.frontier_all, b.frontier_all), (a.frontier_defect, b.frontier_defect)):
            assert [(round(p.cost_per_completed_task, 12), round(p.completion_rate, 12))
                    for p in fa] == [(round(p.cost_per_completed_task, 12),
                                      round(p.completion_rate, 12)) for p in fb]


@pytest.mark.parametrize("seed", [11, 12])
def test_a_dropped_model_is_never_better_in_any_policy(tmp_path, seed):
    """Independent check of the dominance rule through the engine: put the dropped model in a
    policy, then its dominator in its place: cost never rises, nothing else moves."""
    rng = np.random.default_rng(seed)
    ms = {}
    for j in range(8):
        inp = float(rng.choice([0.5, 1.0, 2.0]))
        lc = ({"above": int(rng.choice([3000, 6000])), "input": inp * 2}
              if rng.random() < 0.5 else None)
        kw = {"long_context": lc} if lc else {}
        ms[f"m{j}"] = model(tier="budget", input=inp, output=float(rng.choice([2.0, 4.0])),
                            cache_read=inp / 10, coding_score=float(rng.choice([50, 60])), **kw)
    ms["top"] = model(tier="premium", input=5.0, output=25.0, coding_score=80)
    table = load_prices(write(tmp_path, "p.yaml", prices(ms)))
    w = workload([{"name": "t", "share": 1.0, "phases": [
        {"phase": "search", "calls": 3, "input_tokens": 1500, "output_tokens": 200,
         "difficulty": 40},
        {"phase": "implement", "calls": 4, "input_tokens": 2500, "output_tokens": 800,
         "difficulty": 65}]}], max_attempts=3, feedback_gain=0.3,
        defects={"phases": ["implement"], "rate": {"budget": 0.1, "premium": 0.02}})
    wl = load_workload(write(tmp_path, "w.yaml", w))
    order = sorted(m for m in ms if m != "top")
    gone = dominated(model_profile(table, wl, order), order, ["budget"] * len(order))
    assert gone                                      # the draw has some
    for a, b in gone.items():
        for routes in ({"default": "budget"}, {"default": "premium", "search": "budget"}):
            for mode in ("summary", "full_history"):
                docs = [{"version": 1, "name": "x", "tiers": {"budget": m, "premium": "top"},
                         "routes": routes, "escalation": {"after_failures": 1},
                         "handoff": {"mode": mode, "summary_tokens": 3000,
                                     "summarizer": "budget"}} for m in (a, b)]
                ma, mb = (engine(table, wl, d) for d in docs)
                assert mb.spend_per_task <= ma.spend_per_task * (1 + 1e-12)
                assert mb.completion_rate == pytest.approx(ma.completion_rate, rel=1e-14)
                assert mb.defect_rate <= ma.defect_rate + 1e-15


# --- route grids split into blocks ------------------------------------------------------------

def test_route_blocks_give_the_same_grid(monkeypatch):
    from pathlib import Path
    fx = Path(__file__).parent / "fixtures"
    kw = dict(prices=fx / "prices.yaml", policy=fx / "policy.yaml", workload=fx / "workload.yaml")
    whole = Search(**kw)
    assert whole.nfix == 0
    monkeypatch.setattr(O, "_BLOCK", 20)             # smaller than one config's route grid
    split = Search(**kw)
    assert split.nfix >= 1
    a, b = whole.grid(), split.grid()
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-12, atol=1e-15)
    rng = np.random.default_rng(5)
    for flat in rng.choice(split.size, 15, replace=False):
        m = engine(split.table, split.wl, split.policy_doc(flat))
        assert b["cost"][flat] == pytest.approx(m.cost_per_completed_task, rel=1e-12)
    r1 = optimize(**kw, min_completion=0.97)
    assert r1.best.cost_per_completed_task == pytest.approx(
        optimize(**kw, min_completion=0.97).best.cost_per_completed_task, rel=1e-12)


# --- single models and given policies compete ---------------------------------------------------
#
# Two tiers: cheap (budget, $1/M) and top (premium, $10/M). No system prompt, no cache, the
# workload hands off the full history, max_attempts 4.
#   search:    1 call, 1000 input tokens; always succeeds.
#   implement: 1 call, 1000 input tokens; cheap succeeds half the time, top always.
# single:cheap: search $0.001; implement attempt k resends search's 1000 tokens and the k-1
#   failed attempts: (k+1) * 1000 tokens -> (k+1) * $0.001, reached with probability 0.5^(k-1):
#   0.001 * (2 + 1.5 + 1 + 0.625) = $0.005125; completion 1 - 0.5^4 = 0.9375.
#   cost per completed task = (0.001 + 0.005125) / 0.9375 = $0.0065333...
# Every searched policy escalates to top by attempt 4 at the latest (after_failures <= 3): the
# cheapest (all budget, after 3 failures, summary of 100 tokens) costs
#   0.001 + summary 0.0011 + implement 0.0011 + 0.5 * 0.0021 + 0.25 * 0.0031 + 0.125 * 0.041
#   = $0.01015, completion 1.
# A given policy that never escalates (after_failures 4) with 10-token summaries:
#   0.001 + summary (1000 + 10) * $1/M + implement (1010 + 0.5 * 2010 + 0.25 * 3010
#   + 0.125 * 4010) / 1M = 0.00527875; / 0.9375 = $0.00563067.

def compete(tmp_path, extra_policy=False):
    ms = {"cheap": model(tier="budget", input=1.0, output=1.0),
          "top": model(tier="premium", input=10.0, output=10.0)}
    ph = [{"phase": "search", "calls": 1, "input_tokens": 1000, "output_tokens": 0,
           "success": {"budget": 1.0, "premium": 1.0}},
          {"phase": "implement", "calls": 1, "input_tokens": 1000, "output_tokens": 0,
           "success": {"budget": 0.5, "premium": 1.0}}]
    w = workload([{"name": "t", "share": 1.0, "phases": ph}], max_attempts=4)
    base = policy({"budget": "cheap", "premium": "top"}, {"default": "budget"}, name="base",
                  handoff={"mode": "summary", "summary_tokens": 100, "summarizer": "budget"})
    pols = [write(tmp_path, "base.yaml", base)]
    if extra_policy:
        pols.append(write(tmp_path, "patient.yaml", policy(
            {"budget": "cheap", "premium": "top"}, {"default": "budget"}, name="patient",
            escalation={"after_failures": 4},
            handoff={"mode": "summary", "summary_tokens": 10, "summarizer": "budget"})))
    return write(tmp_path, "p.yaml", prices(ms)), pols, write(tmp_path, "w.yaml", w)


def test_a_single_model_wins_and_says_so(tmp_path):
    p, pols, w = compete(tmp_path)
    r = optimize(p, pols, w, min_completion=0.9)
    assert r.best_kind == "single" and r.best_name == "single:cheap"
    assert r.best.cost_per_completed_task == pytest.approx(0.006125 / 0.9375, rel=1e-12)
    assert r.best.completion_rate == pytest.approx(0.9375, rel=1e-12)
    assert r.best_searched.cost_per_completed_task == pytest.approx(0.01015, rel=1e-12)
    v = r.verdict()
    assert v.startswith("best: single:cheap ($0.0065 per completed task), written as "
                        "base-optimized: one model for every phase; none of the ")
    assert "searched routing policies meeting completion >= 0.9 is cheaper (the cheapest " \
        "costs $0.0101)" in v
    # the written policy is single:cheap, number for number, in compare
    out = tmp_path / "best.yaml"
    r.write_policy(out)
    pol = load_policy(out)
    table, wl = load_prices(p), load_workload(w)
    a = evaluate(compile_ladders(table, Strategy.routed(pol), wl))
    b = evaluate(compile_ladders(table, Strategy.single("cheap"), wl))
    assert a.cost_per_completed_task == pytest.approx(b.cost_per_completed_task, rel=1e-14)
    assert a.spend_per_task == pytest.approx(b.spend_per_task, rel=1e-14)
    assert "single:cheap" in pol.description
    # without the target the single model still wins (completion is not asked for)
    assert optimize(p, pols, w).best_kind == "single"


def test_a_given_policy_wins_and_a_searched_one_otherwise(tmp_path):
    p, pols, w = compete(tmp_path, extra_policy=True)
    r = optimize(p, pols, w, min_completion=0.9)
    assert r.best_kind == "policy" and r.best_name == "patient"
    assert r.best.cost_per_completed_task == pytest.approx(0.00527875 / 0.9375, rel=1e-12)
    assert r.best_policy["escalation"]["after_failures"] == 4
    assert r.best_policy["name"] == "base-optimized"
    assert [c.name for c in r.baselines][:2] == ["base", "patient"]
    # completion 0.95 rules out every strategy that never escalates: a searched policy wins.
    # Still meeting it: single:top (search $0.01 + implement 2000 tokens $0.02 = $0.03) and the
    # base policy (escalates after 2 failures; attempt 3, on top, always succeeds:
    # 0.001 + 0.0011 + 0.0011 + 0.5 * 0.0021 + 0.25 * 0.031 = $0.012)
    r = optimize(p, pols, w, min_completion=0.95)
    assert r.best_kind == "searched"
    assert r.best.cost_per_completed_task == pytest.approx(0.01015, rel=1e-12)
    assert [c.name for c in r.baselines if c.meets_targets] == ["base", "single:top"]
    assert ("beats every single model and given policy meeting completion >= 0.95 (the "
            "cheapest of them, base, costs $0.0120)") in r.verdict()


def test_candidates_join_the_frontier(tmp_path):
    p, pols, w = compete(tmp_path)
    r = optimize(p, pols, w)
    first = r.frontier_all[0]
    assert first.kind == "single" and first.name == "single:cheap" and first.label() == \
        "single:cheap"


def test_cli_says_which_kind_won(tmp_path):
    p, pols, w = compete(tmp_path, extra_policy=True)
    args = ["optimize", "--prices", str(p), "--workload", str(w), "--policy", str(pols[0]),
            "--policy", str(pols[1]), "--min-completion", "0.9"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "best: patient" in res.stdout
    res = runner.invoke(app, args + ["-f", "json"])
    d = json.loads(res.stdout)
    assert d["best_kind"] == "policy" and d["best_name"] == "patient"
    assert d["verdict"].startswith("best: patient")
    assert math.isclose(d["best"]["cost_per_completed_task"], 0.00527875 / 0.9375,
                        rel_tol=1e-12)


def test_a_candidate_of_a_class_no_tier_holds_is_reported(tmp_path):
    p, pols, w = compete(tmp_path)
    table = load_prices(p)
    doc = prices({**{m: {"provider": "acme", "tier": x.tier, "input": x.input,
                         "output": x.output} for m, x in table.models.items()},
                  "mid": model(tier="midrange", input=3.0, output=3.0)})
    p2 = write(tmp_path, "p2.yaml", doc)
    r = optimize(p2, pols, w, candidates=["cheap", "mid", "top"])
    assert any("fill no tier" in n and "mid" in n for n in r.notes)
    assert r.space["tier_models"] == {"budget": ["cheap"], "premium": ["top"]}


def test_threads_change_nothing(tmp_path, monkeypatch):
    from test_optimize import random_inputs

    monkeypatch.setattr(O, "_TABLE_BLOCK", 1)          # one model combination per chunk
    S = Search(*random_inputs(tmp_path, 3))
    assert S.sp.n_combos >= 4 and S.mch == 1
    one = [(b.g0, b.r0, b.E.copy(), b.C.copy(), b.D.copy()) for b in S.blocks(threads=1)]
    two = [(b.g0, b.r0, b.E.copy(), b.C.copy(), b.D.copy()) for b in S.blocks(threads=2)]
    assert [x[:2] for x in one] == [x[:2] for x in two]
    for a, b in zip(one, two):
        for x, y in zip(a[2:], b[2:]):
            assert np.array_equal(x, y)

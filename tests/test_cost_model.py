"""One hand-computed test per rule of SPEC.md §3. Prices are USD per 1M tokens."""

import math

import numpy as np
import pytest

from costsim.engine.analytic import evaluate
from costsim.engine.compile import Strategy, compile_ladders, tier_of_attempt

from helpers import load_all, model, policy, prices, workload


def phase(name="implement", calls=1, inp=1000, out=100, **kw):
    return {"phase": name, "calls": calls, "input_tokens": inp, "output_tokens": out, **kw}


def task(phases, share=1.0, **kw):
    return {"name": "t", "share": share, "phases": phases, **kw}


def run(tmp_path, p, w, pol=None, single=None):
    table, wl, pols = load_all(tmp_path, p, w, [pol] if pol else [])
    s = Strategy.single(single) if single else Strategy.routed(pols[0])
    L = compile_ladders(table, s, wl)
    return L, evaluate(L)


# --- 3.2 tokens and price of one attempt ----------------------------------------------------

def test_cache_hits_and_retry_context(tmp_path):
    # system 1000, h = 0.5, 2 calls of in=1000/out=100 (g = 1100); input 2, output 10, cache 0.2.
    # attempt 1: call 1 ctx=1000: 0.5*1000*0.2 + 0.5*1000*2 + 1000*2 + 100*10 = 4100
    #            call 2 ctx=2100: 210 + 2100 + 2000 + 1000 = 5310        -> 9410 / 1e6
    # attempt 2 resends attempt 1 (retry = 2*1100 = 2200):
    #            call 1 ctx=3200: 320 + 3200 + 3000 = 6520; call 2 ctx=4300: 430 + 4300 + 3000 = 7730
    p = prices({"x": model(input=2.0, output=10.0, cache_read=0.2)})
    w = workload([task([phase(calls=2, success={"x": 0.5})])], system_tokens=1000,
                 cache_hit_rate=0.5, max_attempts=2)
    L, m = run(tmp_path, p, w, single="x")
    assert L.cost[0, 0, :2] == pytest.approx([9410e-6, 14250e-6], rel=1e-12)
    assert m.spend_per_task == pytest.approx(9410e-6 + 0.5 * 14250e-6, rel=1e-12)
    assert m.completion_rate == pytest.approx(0.75)
    assert m.cost_per_completed_task == pytest.approx((9410e-6 + 0.5 * 14250e-6) / 0.75)
    assert m.expected_attempts == pytest.approx(1.5)
    assert m.expected_retries == pytest.approx(0.5)
    # tokens: uncached = 0.5*(1000+2100) + 2*1000 = 3550, cached 1550, output 200 (attempt 1)
    assert L.tokens[0, 0, 0].tolist() == pytest.approx([3550, 1550, 200])


def test_cache_read_absent_means_input_rate(tmp_path):
    p = prices({"x": model(input=2.0, output=10.0)})
    w = workload([task([phase(calls=1, success={"x": 1.0})])], system_tokens=1000,
                 cache_hit_rate=0.5)
    L, m = run(tmp_path, p, w, single="x")
    # 1000 ctx all at 2 + 1000 new at 2 + 100 out at 10 = 5000
    assert m.spend_per_task == pytest.approx(5000e-6)


def test_long_context_rates_apply_per_call(tmp_path):
    # Same phase as above, long_context above 3000 with input 4, output 20, cache_read omitted
    # (-> the long-context *input* rate, 4).
    # attempt 1: call 1 ctx+in = 2000 -> base 4100; call 2 ctx+in = 3100 > 3000 ->
    #   0.5*2100*4 + 0.5*2100*4 + 1000*4 + 100*20 = 14400          -> 18500
    # attempt 2: call 1 ctx=3200: 6400+6400+4000+2000 = 18800; call 2 ctx=4300: 23200 -> 42000
    p = prices({"x": model(input=2.0, output=10.0, cache_read=0.2,
                           long_context={"above": 3000, "input": 4.0, "output": 20.0})})
    w = workload([task([phase(calls=2, success={"x": 0.5})])], system_tokens=1000,
                 cache_hit_rate=0.5, max_attempts=2)
    L, m = run(tmp_path, p, w, single="x")
    assert L.cost[0, 0, :2] == pytest.approx([18500e-6, 42000e-6], rel=1e-12)


def test_long_context_boundary_is_strictly_above(tmp_path):
    # ctx + in == above exactly: base rates.
    p = prices({"x": model(input=2.0, output=10.0, long_context={"above": 2000, "input": 100.0})})
    w = workload([task([phase(calls=1, success={"x": 1.0})])], system_tokens=1000)
    L, m = run(tmp_path, p, w, single="x")
    assert m.spend_per_task == pytest.approx((1000 * 2 + 1000 * 2 + 100 * 10) * 1e-6)


def _two_phase(mode, **handoff):
    return workload([task([phase("search", 1, 1000, 100, success={"x": 1.0}),
                           phase("implement", 1, 200, 50, success={"x": 1.0})])],
                    handoff={"mode": mode, **handoff})


def test_summary_handoff_vs_full_history(tmp_path):
    p = prices({"x": model(input=2.0, output=10.0), "s": model(tier="budget", input=1.0, output=2.0)})
    # phase 1: 1000*2 + 100*10 = 3000. summary: input 1100 at 1 + output 500 at 2 = 2100.
    # phase 2 with summary prior 500: 500*2 + 200*2 + 50*10 = 1900     -> 7000
    pol = policy({"midrange": "x"}, {"default": "midrange"},
                 handoff={"mode": "summary", "summary_tokens": 500, "summarizer": "s"})
    L, m = run(tmp_path, p, _two_phase("full_history"), pol=pol)
    assert m.spend_per_task == pytest.approx(7000e-6)
    assert m.spend_by_model == pytest.approx({"x": 4900e-6, "s": 2100e-6})
    # full history: phase 2 prior = 1*1100: 1100*2 + 400 + 500 = 3100       -> 6100
    pol["handoff"] = {"mode": "full_history"}
    L, m = run(tmp_path, p, _two_phase("full_history"), pol=pol)
    assert m.spend_per_task == pytest.approx(6100e-6)


def test_single_model_summarizes_with_itself_from_workload_handoff(tmp_path):
    p = prices({"x": model(input=2.0, output=10.0)})
    L, m = run(tmp_path, p, _two_phase("summary", summary_tokens=500), single="x")
    # summary by x: 1100*2 + 500*10 = 7200; total 3000 + 7200 + 1900 = 12100
    assert m.spend_per_task == pytest.approx(12100e-6)


def test_summarizer_input_is_final_transcript_of_successful_attempt(tmp_path):
    # Phase 1 succeeds at attempt 2 with probability 1 (p = [0, 1]); the summary then reads
    # system + prior + 2*n*g = 0 + 0 + 2*1100 = 2200 tokens.
    p = prices({"x": model(input=2.0, output=10.0)})
    w = workload([task([phase("search", 1, 1000, 100, success={"x": [0.0, 1.0]}),
                        phase("implement", 1, 200, 50, success={"x": 1.0})])],
                 handoff={"mode": "summary", "summary_tokens": 500})
    L, m = run(tmp_path, p, w, single="x")
    a1 = 3000
    a2 = 1100 * 2 + 1000 * 2 + 100 * 10       # resends attempt 1
    summ = 2200 * 2 + 500 * 10
    ph2 = 500 * 2 + 200 * 2 + 50 * 10
    assert m.spend_per_task == pytest.approx((a1 + a2 + summ + ph2) * 1e-6)


# --- 3.1 routing ----------------------------------------------------------------------------

def test_escalation_ladder_tier_index():
    assert [tier_of_attempt(0, k, 2, 2) for k in range(1, 6)] == [0, 0, 1, 1, 2]
    assert [tier_of_attempt(0, k, 1, 2) for k in range(1, 6)] == [0, 1, 2, 2, 2]
    assert [tier_of_attempt(1, k, 3, 2) for k in range(1, 6)] == [1, 1, 1, 2, 2]


def _three(tmp_path, pol_extra=None, w_extra=None, max_attempts=5):
    p = prices({"b": model(tier="budget", input=1, output=1),
                "m": model(tier="midrange", input=2, output=2),
                "t": model(tier="premium", input=3, output=3)})
    w = workload([task([phase("search", success={"budget": 0.5, "midrange": 0.5, "premium": 0.5}),
                        phase("implement", success={"budget": 0.5, "midrange": 0.5, "premium": 0.5})])],
                 max_attempts=max_attempts, **(w_extra or {}))
    pol = policy({"budget": "b", "midrange": "m", "premium": "t"},
                 {"default": "budget"}, escalation={"after_failures": 2}, **(pol_extra or {}))
    table, wl, pols = load_all(tmp_path, p, w, [pol])
    return compile_ladders(table, Strategy.routed(pols[0]), wl)


def test_routed_escalates_one_tier_every_after_failures(tmp_path):
    L = _three(tmp_path)
    names = [[L.rates.ids[i] for i in row] for row in L.model[0]]
    assert names == [["b", "b", "m", "m", "t"]] * 2


def test_min_tier_and_raise_with_phase_restriction(tmp_path):
    sig = {"security_sensitive": {"share": 0.25, "difficulty": 0},
           "cross_file": {"share": 0.5, "difficulty": 0}}
    L = _three(tmp_path, pol_extra={"signals": {
        "security_sensitive": {"min_tier": "premium", "phases": ["implement"]},
        "cross_file": {"raise": 1}}}, w_extra={"signals": sig})
    by_sig = {cell.signals: [[L.rates.ids[i] for i in row] for row in L.model[c]]
              for c, cell in enumerate(L.cells)}
    assert by_sig[()] == [["b", "b", "m", "m", "t"]] * 2
    assert by_sig[("cross_file",)] == [["m", "m", "t", "t", "t"]] * 2
    assert by_sig[("security_sensitive",)] == [["b", "b", "m", "m", "t"], ["t"] * 5]
    # min_tier premium plus raise 1 is capped at the last tier.
    assert by_sig[("security_sensitive", "cross_file")] == [["m", "m", "t", "t", "t"], ["t"] * 5]
    weights = {cell.signals: cell.weight for cell in L.cells}
    assert weights == pytest.approx({(): 0.375, ("cross_file",): 0.375,
                                     ("security_sensitive",): 0.125,
                                     ("security_sensitive", "cross_file"): 0.125})


def test_policy_signal_not_in_workload_never_fires(tmp_path):
    L = _three(tmp_path, pol_extra={"signals": {"architecture": {"min_tier": "premium"}}})
    assert len(L.cells) == 1
    assert [L.rates.ids[i] for i in L.model[0, 0]] == ["b", "b", "m", "m", "t"]


# --- 3.3 success ----------------------------------------------------------------------------

def test_score_based_success_with_feedback_gain_and_signal_difficulty(tmp_path):
    p = prices({"x": model(coding_score=70)})
    w = workload([task([phase(difficulty=60)])], feedback_gain=0.5, max_attempts=3,
                 signals={"cross_file": {"share": 0.5, "difficulty": 10}})
    L, m = run(tmp_path, p, w, single="x")
    p1 = 1 / (1 + math.exp(-1.0))                  # score 70, difficulty 60
    p2 = p1 + (1 - p1) * 0.5
    byc = {cell.signals: L.p[c, 0, :3] for c, cell in enumerate(L.cells)}
    assert byc[()] == pytest.approx([p1, p2, p2], rel=1e-12)
    # the signal adds 10 difficulty: p1 = 1/(1+e^0) = 0.5, retries 0.75
    assert byc[("cross_file",)] == pytest.approx([0.5, 0.75, 0.75], rel=1e-12)
    c_plain = 1 - (1 - p1) * (1 - p2) ** 2
    c_sig = 1 - 0.5 * 0.25 * 0.25
    assert m.completion_rate == pytest.approx(0.5 * c_plain + 0.5 * c_sig, rel=1e-12)


def test_success_map_model_id_before_tier_and_list_repeats_last(tmp_path):
    p = prices({"x": model(tier="premium"), "y": model(tier="premium")})
    w = workload([task([phase(success={"x": [0.2, 0.4], "premium": 0.9})])], max_attempts=4)
    L, _ = run(tmp_path, p, w, single="x")
    assert L.p[0, 0, :4] == pytest.approx([0.2, 0.4, 0.4, 0.4])
    L, _ = run(tmp_path, p, w, single="y")
    assert L.p[0, 0, :4] == pytest.approx([0.9] * 4)


def test_success_map_miss_falls_back_to_score(tmp_path):
    p = prices({"x": model(tier="budget", coding_score=60)})
    w = workload([task([phase(difficulty=60, success={"premium": 0.99})])])
    L, _ = run(tmp_path, p, w, single="x")
    assert L.p[0, 0, 0] == pytest.approx(0.5)


# --- 3.4 expectations -----------------------------------------------------------------------

def test_abandoned_phase_stops_the_task(tmp_path):
    # phase 1 succeeds with 0.5 per attempt, 2 attempts -> P1 = 0.75; phase 2 is reached
    # with probability 0.75 and always succeeds.
    p = prices({"x": model(input=1.0, output=0.0)})
    w = workload([task([phase("a", 1, 1000, 0, success={"x": 0.5}),
                        phase("b", 1, 2000, 0, success={"x": 1.0})])], max_attempts=2)
    L, m = run(tmp_path, p, w, single="x")
    # phase a: attempt 1 = 1000, attempt 2 = 1000 resent + 1000 = 2000: E_a = 1000 + 0.5*2000
    # phase b (full history, prior = 1000): 1000 + 2000 = 3000
    e = 1000 + 0.5 * 2000 + 0.75 * 3000
    assert m.spend_per_task == pytest.approx(e * 1e-6)
    assert m.completion_rate == pytest.approx(0.75)
    assert m.cost_per_completed_task == pytest.approx(e * 1e-6 / 0.75)


def test_task_type_shares_weight_spend_and_completion(tmp_path):
    p = prices({"x": model(input=1.0, output=0.0)})
    w = workload([task([phase("a", 1, 1000, 0, success={"x": 1.0})], share=0.25, name="one"),
                  task([phase("a", 1, 3000, 0, success={"x": 0.0})], share=0.75, name="two",
                       max_attempts=1)])
    w["task_types"][0]["name"], w["task_types"][1]["name"] = "one", "two"
    L, m = run(tmp_path, p, w, single="x")
    assert m.spend_per_task == pytest.approx((0.25 * 1000 + 0.75 * 3000) * 1e-6)
    assert m.completion_rate == pytest.approx(0.25)
    # cost per completed task is total spend over total completions, not a mean of ratios
    assert m.cost_per_completed_task == pytest.approx(2500e-6 / 0.25)


def _defect_setup(tmp_path, rates, catch, review_success, phases=("implement",), after=2):
    p = prices({"dev": model(tier="midrange"), "rev": model(tier="premium"),
                "rev2": model(provider="other", tier="premium")})
    ph = [phase(n, success={"dev": 1.0, "premium": 1.0}) for n in phases]
    ph.append(phase("review", success=review_success))
    w = workload([task(ph)], max_attempts=2,
                 defects={"phases": list(phases), "rate": rates, "catch_rate": catch,
                          "review_minutes": {"base": 10, "per_defect": 30}})
    pol = policy({"midrange": "dev", "premium": "rev", "top": "rev2"},
                 {"default": "midrange", "review": "premium"},
                 escalation={"after_failures": after})
    return run(tmp_path, p, w, pol=pol)


def test_defect_caught_by_review_model(tmp_path):
    _, m = _defect_setup(tmp_path, {"dev": 0.1}, {"rev": 0.6}, {"rev": 1.0})
    assert m.defect_rate == pytest.approx(0.1 * 0.4)
    assert m.review_minutes == pytest.approx(10 + 30 * 0.04)


def test_two_defect_phases_each_defect_caught_independently(tmp_path):
    _, m = _defect_setup(tmp_path, {"midrange": 0.1, "dev": 0.2}, {"premium": 0.5},
                         {"rev": 1.0}, phases=("implement", "test_repair"))
    # model id wins over tier: both phases use dev -> rate 0.2 each; catch 0.5 per defect
    assert m.defect_rate == pytest.approx(1 - (1 - 0.2 * 0.5) ** 2)


def test_review_catch_depends_on_which_attempt_succeeds(tmp_path):
    # review attempt 1 by rev (p 0.5, catch 0.5); after one failure rev2 (p 1, catch 1.0)
    _, m = _defect_setup(tmp_path, {"dev": 0.1}, {"rev": 0.5, "rev2": 1.0},
                         {"rev": 0.5, "rev2": 1.0}, after=1)
    assert m.defect_rate == pytest.approx(0.5 * 0.1 * 0.5 + 0.5 * 0.0)


def test_model_named_by_neither_map_has_no_defects_and_no_catch(tmp_path):
    _, m = _defect_setup(tmp_path, {"budget": 0.5}, {"budget": 0.9}, {"rev": 1.0})
    assert m.defect_rate == 0.0
    assert m.review_minutes == pytest.approx(10)


def test_spend_by_provider_and_premium_share(tmp_path):
    L, m = _defect_setup(tmp_path, {"dev": 0.1}, {"rev": 0.6}, {"rev": 1.0})
    assert sum(m.spend_by_model.values()) == pytest.approx(m.spend_per_task)
    assert sum(m.spend_by_provider.values()) == pytest.approx(m.spend_per_task)
    # dev (midrange) and rev (premium) do one identical attempt each (same phase sizes)
    assert m.premium_share == pytest.approx(m.spend_by_model["rev"] / m.spend_per_task)

"""Tasks that differ (variation) and retry_context: none in compile + the analytic engine.

Numbers are checked against closed forms, SciPy integrals written here, a brute-force (z, e)
integration with panels split at every long-context step, and a quadrature rule ten times
finer; and `variation` absent or zero must give the numbers without it to the last digit.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import integrate, special

import costsim
import costsim.engine.variation as V
from costsim.engine.analytic import cell_stats, evaluate, ladder_stats
from costsim.engine.compile import Strategy, compile_ladders

import helpers as H

ROOT = Path(__file__).parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
HEAD = ("spend_per_task", "completion_rate", "cost_per_completed_task", "defect_rate",
        "review_minutes", "expected_attempts", "expected_retries")


def phi(z):
    return math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


# --- variation absent or zero: the same numbers, bit for bit ---------------------------------

def _compare_json(prices, workload_doc, policies, tmp_path, name):
    wp = tmp_path / f"{name}.yaml"
    wp.write_text(yaml.safe_dump(workload_doc, sort_keys=False))
    r = costsim.compare(prices, policies, wp, pareto=[60]).to_dict(breakdown=True)
    r.pop("workload")
    return json.dumps(r, sort_keys=True)


CASES = [(ROOT / "workloads" / f"{w}.yaml", None) for w in ("small-team", "medium-team",
                                                             "large-team")] + \
    [(FIXTURES / "workload.yaml", [FIXTURES / "policy.yaml"])]


@pytest.mark.parametrize("workload, policies", CASES, ids=lambda x: getattr(x, "stem", "-"))
def test_zero_variation_gives_the_numbers_without_it(tmp_path, workload, policies):
    prices = FIXTURES / "prices.yaml" if policies else None
    doc = yaml.safe_load(workload.read_text())
    doc.pop("variation", None)
    for t in doc["task_types"]:
        t.pop("variation", None)
    plain = _compare_json(prices, doc, policies, tmp_path, "plain")
    zero = copy.deepcopy(doc)
    zero["variation"] = {"difficulty": 0.0, "tokens": 0.0, "tokens_follow_difficulty": 0.8}
    zero["task_types"][0]["variation"] = {"difficulty": 0, "tokens": 0}
    assert _compare_json(prices, zero, policies, tmp_path, "zero") == plain


def test_no_retry_context_by_hand(tmp_path):
    """system 1000, h 0.5, 2 calls of in 1000/out 100 at input 2, output 10, cache 0.2.
    retry_context: none -> attempt 2 is billed like attempt 1 ($0.00941, not $0.01425), and the
    summary after a success at attempt 2 reads system + n*g = 1000 + 2200 = 3200 tokens."""
    p = H.prices({"x": H.model(input=2.0, output=10.0, cache_read=0.2)})
    w = H.workload([{"name": "t", "share": 1.0, "phases": [
        {"phase": "implement", "calls": 2, "input_tokens": 1000, "output_tokens": 100,
         "success": {"x": 0.5}},
        {"phase": "review", "calls": 1, "input_tokens": 0, "output_tokens": 0,
         "success": {"x": 1.0}}]}], system_tokens=1000, cache_hit_rate=0.5, max_attempts=2)
    pol = H.policy({"midrange": "x"}, {"default": "midrange"},
                   escalation={"retry_context": "none"},
                   handoff={"mode": "summary", "summary_tokens": 100})
    table, wl, pols = H.load_all(tmp_path, p, w, [pol])
    L = compile_ladders(table, Strategy.routed(pols[0]), wl)
    assert L.retry_context == "none"
    assert L.cost[0, 0, :2] == pytest.approx([9410e-6, 9410e-6], rel=1e-12)
    # summary: 3200 tokens at 2 + 100 at 10 = 7400 per 1M, whichever attempt succeeded
    assert L.summ_cost[0, 0, :2] == pytest.approx([7400e-6, 7400e-6], rel=1e-12)
    # review: prior = summary 100, ctx = 1100: 0.5*1100*0.2 + 0.5*1100*2 = 1210
    m = evaluate(L)
    e = 9410e-6 + 0.5 * 9410e-6 + 0.75 * (7400e-6 + 1210e-6)
    assert m.spend_per_task == pytest.approx(e, rel=1e-12)
    pol["escalation"] = {"retry_context": "full"}
    table, wl, pols = H.load_all(tmp_path, p, w, [pol])
    L = compile_ladders(table, Strategy.routed(pols[0]), wl)
    assert L.cost[0, 0, :2] == pytest.approx([9410e-6, 14250e-6], rel=1e-12)


# --- the pieces ------------------------------------------------------------------------------

@pytest.mark.parametrize("s", [0.5, 1.3, 3.0, 8.0])
def test_intercepts_keep_every_rate(s):
    rule = V.node_rule(V.Spread(s, 0.7, 0.5))
    p = np.array([1e-4, 0.01, 0.3, 0.5, 0.77, 0.99, 0.9999])
    b = V.solve_intercepts(p, s, rule)
    on_rule = (rule.weight * V.logistic(b[:, None] - s * rule.z)).sum(1)
    assert on_rule == pytest.approx(p, rel=1e-12)
    for bb, pp in zip(b, p):           # and over the continuous normal, by adaptive quadrature
        cont = integrate.quad(lambda z: V.logistic(bb - s * z) * phi(z), -12, 12,
                              points=[bb / s], epsabs=0, epsrel=1e-12, limit=200)[0]
        assert cont == pytest.approx(pp, rel=1e-8)
    assert (V.solve_intercepts(np.array([0.0, 1.0]), s, rule) == [-np.inf, np.inf]).all()
    assert V.node_success(np.array([0.0, 1.0]), np.array([-np.inf, np.inf]), s,
                          rule.z).tolist() == [[0.0] * len(rule), [1.0] * len(rule)]


@pytest.mark.parametrize("mu, sigma, theta", [(-0.18, 0.6, 1.5), (0.4, 0.3, 0.8),
                                             (-2.0, 1.5, 9.0), (0.1, 0.0, 1.0)])
def test_size_above_is_the_lognormal_partial_mean(mu, sigma, theta):
    got = float(V.size_above(theta, mu, sigma))
    if sigma == 0:
        assert got == (math.exp(mu) if math.exp(mu) > theta else 0.0)
        return
    # E[u 1{u > theta}] with ln u ~ N(mu, sigma^2), integrating over x = ln u
    want = integrate.quad(lambda x: math.exp(x) * phi((x - mu) / sigma) / sigma,
                          math.log(theta), mu + 12 * sigma + 5, epsabs=0, epsrel=1e-12)[0]
    assert got == pytest.approx(want, rel=1e-10)
    assert float(V.size_mean(mu, sigma)) == pytest.approx(math.exp(mu + sigma * sigma / 2))


# --- a workload with long-context thresholds in reach ----------------------------------------

def setup(tmp_path, var, *, lc_above=40000):
    p = H.prices({"b": H.model("p1", "budget", 0.5, 1.5, cache_read=0.05, coding_score=55,
                               long_context={"above": lc_above, "input": 1.0, "output": 3.0}),
                  "t": H.model("p2", "premium", 5.0, 25.0, cache_read=0.5, coding_score=80,
                               long_context={"above": 2 * lc_above, "input": 10.0})})
    w = H.workload([
        {"name": "bug", "share": 0.7, "phases": [
            {"phase": "implement", "calls": 5, "input_tokens": 2500, "output_tokens": 900,
             "difficulty": 72},
            {"phase": "review", "calls": 1, "input_tokens": 5000, "output_tokens": 500,
             "success": {"budget": [0.6, 0.8], "premium": 0.97}}]},
        {"name": "doc", "share": 0.3, "max_attempts": 2, "phases": [
            {"phase": "docs", "calls": 1, "input_tokens": 1000, "output_tokens": 800,
             "difficulty": 50}]},
    ], max_attempts=3, system_tokens=8000, cache_hit_rate=0.6, feedback_gain=0.4,
        signals={"cross_file": {"share": 0.3, "difficulty": 6}},
        defects={"phases": ["implement"], "rate": {"budget": 0.15, "premium": 0.03},
                 "catch_rate": {"budget": 0.2, "premium": 0.8}},
        **({"variation": var} if var else {}))
    pol = H.policy({"budget": "b", "premium": "t"}, {"default": "budget"},
                   escalation={"after_failures": 1}, signals={"cross_file": {"raise": 1}},
                   handoff={"mode": "summary", "summary_tokens": 800, "summarizer": "budget"})
    table, wl, pols = H.load_all(tmp_path, p, w, [pol])
    return table, wl, [Strategy.routed(pols[0]), Strategy.single("b")]


def headline(L):
    m = evaluate(L)
    return np.array([getattr(m, f) for f in HEAD])


def brute_force(L, nz=240, ne=12):
    """E[spend] and E[completion] by brute force: deterministic size at every (z, e) point,
    z and e panels split at every long-context step, the §3.4 recursion at each point."""
    pc = L.variation.pieces
    E = C = 0.0
    x, wx = np.polynomial.legendre.leggauss(6)
    for c in range(len(L.cells)):
        s, t, r = pc.s[c], pc.t[c], pc.r[c]
        rho = math.sqrt(max(0.0, 1 - r * r))
        thr = np.unique(np.concatenate([pc.theta[c].ravel(), pc.summ_theta[c].ravel()]))
        thr = thr[np.isfinite(thr)]

        def panels(edges, x=x, wx=wx):
            a, b = edges[:-1, None], edges[1:, None]
            return ((a + b) / 2 + (b - a) / 2 * x).ravel(), ((b - a) / 2 * wx).ravel()

        ze = np.linspace(-9, 9 + t * r, nz + 1)
        if r > 0.9 and t > 0:
            # z where a call's threshold is crossed at e = 0; the crossing is a step of width
            # w = rho / r in z: refine around it
            k = (np.log(thr) + t * t / 2) / (t * r)
            k = k[np.abs(k) < 7.5]
            w = rho / r
            k = (k[:, None] + w * np.linspace(-8, 8, 9 if w > 0 else 1)[None, :]).ravel()
            ze = np.unique(np.concatenate([ze, k[(k > ze[0]) & (k < ze[-1])]]))
        zs, zw = panels(ze)
        for z, w in zip(zs, zw * np.exp(-zs * zs / 2) / math.sqrt(2 * math.pi)):
            if t > 0 and rho > 0:
                k = (np.log(thr) + t * t / 2 - t * r * z) / (t * rho)
                ee = np.linspace(-9, 9 + t * rho, ne + 1)
                es, ew = panels(np.unique(np.concatenate([ee, k[(k > ee[0]) & (k < ee[-1])]])))
                ew = ew * np.exp(-es * es / 2) / math.sqrt(2 * math.pi)
            else:
                es, ew = np.zeros(1), np.ones(1)
            u = np.exp(t * (r * z + rho * es) - t * t / 2)
            live = u[:, None, None, None] > pc.theta[c][None]
            cost = u[:, None, None] * (pc.base[c][None] + (pc.delta[c][None] * live).sum(-1))
            summ = u[:, None, None] * (pc.summ_base[c][None] + pc.summ_delta[c][None]
                                       * (u[:, None, None] > pc.summ_theta[c][None]))
            p = L.p[c]
            if s > 0:
                p = np.where(p <= 0, 0.0, np.where(p >= 1, 1.0, V.logistic(pc.b[c] - s * z)))
            st = ladder_stats(np.broadcast_to(p, cost.shape)[None], cost[None], summ[None], L,
                              slice(c, c + 1), nodes=True)
            E += L.weight[c] * w * float(ew @ st.E[0])
            C += L.weight[c] * w * float(ew @ st.C[0])
    return E, C


SPREADS = [(1.3, 0.7, 0.5), (3.0, 0.8, 0.9), (1.3, 0.7, 0.995), (0.5, 1.2, 0.9999),
           (1.3, 0.7, 1.0), (0.0, 1.0, 0.7)]


@pytest.mark.parametrize("s, t, r", [x for x in SPREADS if x != (3.0, 0.8, 0.9)])
def test_analytic_engine_against_brute_force(tmp_path, s, t, r):
    table, wl, strategies = setup(tmp_path, {"difficulty": s, "tokens": t,
                                             "tokens_follow_difficulty": r})
    for strat in strategies[:1]:             # the routed policy: two models, escalation
        L = compile_ladders(table, strat, wl)
        assert np.isfinite(L.variation.pieces.theta).any()      # long context in reach
        m = evaluate(L)
        E, C = brute_force(L, nz=40)
        assert m.spend_per_task == pytest.approx(E, rel=1e-7), strat.name
        assert m.completion_rate == pytest.approx(C, rel=1e-7), strat.name


@pytest.mark.parametrize("s, t, r", SPREADS[:5] + [(8.0, 0.5, 0.3)])
def test_node_rule_against_a_much_finer_rule(tmp_path, monkeypatch, s, t, r):
    table, wl, strategies = setup(tmp_path, {"difficulty": s, "tokens": t,
                                             "tokens_follow_difficulty": r})
    strat = strategies[0]
    a = headline(compile_ladders(table, strat, wl))
    monkeypatch.setattr(V, "PANEL_MAX", 0.25)
    monkeypatch.setattr(V, "PANEL_SCALE", 0.3)
    monkeypatch.setattr(V, "GL_NODES", 12)
    monkeypatch.setattr(V, "GL_MIN_NODES", 8)
    monkeypatch.setattr(V, "TRAP_SCALE", V.TRAP_SCALE / 4)
    monkeypatch.setattr(V, "TRAP_GAUSS", V.TRAP_GAUSS / 4)
    b = headline(compile_ladders(table, strat, wl))
    assert np.abs(a - b).max() <= 1e-7 * np.abs(b).max()
    assert np.abs(a - b) / np.maximum(np.abs(b), 1e-300) == pytest.approx(0, abs=1e-7)


# --- properties ------------------------------------------------------------------------------

def test_a_task_types_own_variation_replaces_the_workloads(tmp_path):
    """The workload spreads every type; the doc type sets its own block to zero, so its cells
    give the numbers of the same workload without variation (to the last digit) and the bug
    type's cells those of a workload where only it has the spread."""
    var = {"difficulty": 1.5, "tokens": 0.6, "tokens_follow_difficulty": 0.4}
    (tmp_path / "a").mkdir()
    table, wl, strategies = setup(tmp_path / "a", var)
    d = tmp_path / "b"
    d.mkdir()
    doc = yaml.safe_load((tmp_path / "a" / "workload.yaml").read_text())
    doc["task_types"][1]["variation"] = {"difficulty": 0, "tokens": 0}
    own = costsim.loader.load_workload(H.write(d, "own.yaml", doc))
    doc.pop("variation")
    none = costsim.loader.load_workload(H.write(d, "none.yaml", doc))
    doc["task_types"][0]["variation"] = var
    doc["task_types"][1].pop("variation")
    bug_only = costsim.loader.load_workload(H.write(d, "bug.yaml", doc))
    s_own, s_none, s_bug = (cell_stats(compile_ladders(table, strategies[0], w))
                            for w in (own, none, bug_only))
    cells = compile_ladders(table, strategies[0], own).cells
    docs = np.array([c.task == 1 for c in cells])
    for f in ("E", "C", "defect"):
        assert (getattr(s_own, f)[docs] == getattr(s_none, f)[docs]).all()
        assert (getattr(s_own, f)[~docs] == getattr(s_bug, f)[~docs]).all()
        assert not np.allclose(getattr(s_own, f)[~docs], getattr(s_none, f)[~docs])


def test_certain_and_impossible_attempts_stay_so(tmp_path):
    p = H.prices({"x": H.model(input=1.0, output=1.0)})
    w = H.workload([{"name": "t", "share": 1.0, "phases": [
        {"phase": "a", "calls": 1, "input_tokens": 100, "output_tokens": 0,
         "success": {"x": 1.0}},
        {"phase": "b", "calls": 1, "input_tokens": 100, "output_tokens": 0,
         "success": {"x": [0.0, 0.4]}}]}], max_attempts=3,
        variation={"difficulty": 4.0, "tokens": 0.5})
    table, wl, _ = H.load_all(tmp_path, p, w)
    m = evaluate(compile_ladders(table, Strategy.single("x"), wl))
    a, b = m.phases
    assert a["attempts"] == pytest.approx(1.0, rel=1e-14)           # never a retry
    assert a["success_rate"] == pytest.approx(1.0, rel=1e-14)
    # b: attempt 1 always fails, attempt 3 follows attempt 2's failure (rate 0.6 over tasks)
    assert b["attempts"] == pytest.approx(2.6, rel=1e-12)
    # attempts 2 and 3 fail together more often than independent coins would (0.36)
    assert m.completion_rate < 1 - 0.6 * 0.6


def test_size_spread_alone_keeps_the_mean_without_long_context(tmp_path):
    p = H.prices({"x": H.model(input=2.0, output=10.0, cache_read=0.2)})
    w = H.workload([{"name": "t", "share": 1.0, "phases": [
        {"phase": "a", "calls": 3, "input_tokens": 1000, "output_tokens": 300,
         "success": {"x": 0.6}}]}], max_attempts=3, system_tokens=2000, cache_hit_rate=0.5)
    table, wl, _ = H.load_all(tmp_path, p, w)
    base = evaluate(compile_ladders(table, Strategy.single("x"), wl))
    for r in (0.0, 0.7):
        w["variation"] = {"tokens": 1.2, "tokens_follow_difficulty": r}
        table, wl, _ = H.load_all(tmp_path, p, w)
        m = evaluate(compile_ladders(table, Strategy.single("x"), wl))
        for f in HEAD + ("premium_share",):
            assert getattr(m, f) == pytest.approx(getattr(base, f), rel=1e-12), f
        assert m.tokens["output"] == pytest.approx(base.tokens["output"], rel=1e-12)


def test_difficulty_spread_makes_retries_fail_together(tmp_path):
    """Three attempts at p = 0.5: completion 1 - E[sigma(s z)^3] (b = 0 by symmetry), below
    the independent coins' 0.875 and falling as s grows."""
    p = H.prices({"x": H.model(input=1.0, output=1.0)})
    w = H.workload([{"name": "t", "share": 1.0, "phases": [
        {"phase": "a", "calls": 1, "input_tokens": 100, "output_tokens": 0,
         "success": {"x": 0.5}}]}], max_attempts=3)
    last = 0.875
    for s in (0.5, 1.3, 3.0, 10.0):
        w["variation"] = {"difficulty": s}
        table, wl, _ = H.load_all(tmp_path, p, w)
        m = evaluate(compile_ladders(table, Strategy.single("x"), wl))
        want = 1 - integrate.quad(lambda z: V.logistic(s * z) ** 3 * phi(z), -12, 12,
                                  epsabs=0, epsrel=1e-12, limit=200)[0]
        assert m.completion_rate == pytest.approx(want, rel=1e-9)
        assert m.completion_rate < last
        last = m.completion_rate


def test_closed_form_long_context_with_difficulty(tmp_path):
    """s = 0 and one certain call: E = c * (1 - P) + 2c * P where the long-context rate doubles
    the bill above the threshold, P = E[u 1{u > theta}] (lognormal, closed form)."""
    p = H.prices({"x": H.model(input=1.0, output=1.0, long_context={"above": 30000,
                                                                  "input": 2.0, "output": 2.0})})
    w = H.workload([{"name": "t", "share": 1.0, "phases": [
        {"phase": "a", "calls": 1, "input_tokens": 20000, "output_tokens": 1000,
         "success": {"x": 1.0}}]}], variation={"tokens": 0.8, "tokens_follow_difficulty": 0.3})
    table, wl, _ = H.load_all(tmp_path, p, w)
    m = evaluate(compile_ladders(table, Strategy.single("x"), wl))
    c = 21000e-6
    above = special.ndtr((-math.log(1.5) + 0.32) / 0.8)      # E[u 1{u > 1.5}], t = 0.8
    assert m.spend_per_task == pytest.approx(c + c * above, rel=1e-10)


def test_per_type_tables_for_other_evaluators_match_the_ladders(tmp_path):
    """CompileCache.type_* (the per-node ladder parts a policy search combines itself) give
    the numbers compile_ladders puts in the ladders."""
    from costsim.engine.compile import CompileCache, Spread, TableConfig, node_success

    var = {"difficulty": 1.3, "tokens": 0.8, "tokens_follow_difficulty": 0.5}
    table, wl, strategies = setup(tmp_path, var)
    strat = strategies[0]
    L = compile_ladders(table, strat, wl)
    ids = L.rates.ids
    cache = CompileCache(table, wl, ids)
    cfg = TableConfig.of(strat, wl)
    info = cache.types[0]
    sl = slice(info.start, info.stop)
    Pt, Kt = info.phases, info.attempts
    model = L.model[sl, :Pt, :Kt]
    ii, kk = np.arange(Pt)[None, :, None], np.arange(Kt)[None, None, :]
    costs = cache.type_costs(0, cfg, ids)
    assert (costs["cost"][ii, kk, model] == L.cost[sl, :Pt, :Kt]).all()
    p = cache.type_success(0, ids)[info.extra_index[:, None, None], ii, kk, model]
    assert (p == L.p[sl, :Pt, :Kt]).all()
    spread = Spread.of(wl.variation_of(wl.task_types[0]))
    pz = cache.type_pieces(0, cfg, ids)
    used = np.zeros((Pt, Kt, len(ids)), bool)
    used[np.broadcast_to(ii, model.shape), np.broadcast_to(kk, model.shape), model] = True
    key, rule = cache.node_rule(spread, np.concatenate([pz["theta"][used].ravel(),
                                                        pz["summ_theta"].ravel()]))
    tn = L.variation.types[0]
    assert (rule.z == tn.rule.z).all() and (rule.weight == tn.rule.weight).all()
    b = cache.intercepts(key, rule, spread.s, p)
    assert (node_success(p, b, spread.s, rule.z) ==
            node_success(L.p[sl, :Pt, :Kt], tn.b[:, :Pt, :Kt], spread.s, tn.rule.z)).all()
    nc = cache.type_node_costs(0, cfg, key, rule, ids)
    assert (nc["cost"][ii, kk, model] == tn.cost[ii, kk, model]).all()


def test_compare_on_two_threads_gives_the_same_numbers_in_the_same_order(monkeypatch):
    """With many strategies `compare` evaluates on a worker thread as well as its own (which
    also compiles): every strategy's numbers and their order are those of one thread."""
    import os

    from costsim import api

    models = ["gpt-5.6-luna", "deepseek-v4-flash", "glm-5.2", "gemini-3.7-flash"]

    def run(parallel_from: int) -> str:
        monkeypatch.setattr(api, "PARALLEL_FROM", parallel_from)
        monkeypatch.setattr(os, "cpu_count", lambda: 2)
        r = costsim.compare(models=models).to_dict(breakdown=True)
        return json.dumps(r, sort_keys=True)

    one = run(10 ** 9)
    assert len(json.loads(one)["strategies"]) >= 8
    assert run(2) == one

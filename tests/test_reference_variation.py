"""tests/reference_model.py's §3.5 (variation) and retry_context extension, checked against hand
calculations, closed forms and SciPy integrals written here apart from it."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import integrate, optimize, special

import reference_model as ref

FIXTURES = Path(__file__).parent / "fixtures"
KEYS = ("spend_per_task", "completion_rate", "cost_per_completed_task", "defect_rate",
        "review_minutes", "expected_attempts", "retries")


def _load(name):
    return yaml.safe_load((FIXTURES / name).read_text())


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


def workload(phases, **kw):
    d = {"version": 1, "name": "w", "max_attempts": 2, "system_tokens": 1000,
         "cache_hit_rate": 0.5, "feedback_gain": 0.0,
         "task_types": [{"name": "t", "share": 1.0, "phases": phases}]}
    d.update(kw)
    return d


def policy(tiers, **kw):
    d = {"version": 1, "name": "pol", "tiers": tiers, "routes": {"default": next(iter(tiers))},
         "escalation": {"after_failures": 1}}
    d.update(kw)
    return d


# --- retry_context: none, by hand ----------------------------------------------------------------

TWO = prices(a=model("budget", 2.0, 10.0, 0.5), b=model("premium", 4.0, 20.0, 1.0))
TWO_PHASES = [
    {"phase": "implement", "calls": 2, "input_tokens": 1000, "output_tokens": 100,
     "success": {"a": 0.6, "b": 0.9}},
    {"phase": "review", "calls": 1, "input_tokens": 500, "output_tokens": 200,
     "success": {"a": 0.5, "b": 1.0}},
]


@pytest.mark.parametrize("retry_context, spend", [("none", 0.044703), ("full", 0.053111)])
def test_retry_context_by_hand(retry_context, spend):
    """Worked in the comments: attempt 1 on a, attempt 2 on b (escalation after one failure),
    summary handoff of 300 tokens written by b after implement."""
    # implement, calls at ctx 1000 and 2100 (+1000 new, 100 out), h = 0.5:
    #   on a: (250+1000+2000+1000) + (525+2100+2000+1000) = 9875 micro-USD; on b: twice that.
    #   retry full on b: ctx 3200 and 4300 -> (1600+6400+4000+2000) + (2150+8600+4000+2000)
    #   = 30750.
    # summarizer (b, no cache): input 1000 + 2200 (none) = 3200 -> 12800 + 6000 = 18800;
    #   after a success at attempt 2 with full retry: 1000 + 4400 = 5400 -> 21600 + 6000 = 27600.
    # review, ctx 1000 + 300: a 4625; retry on b: none -> 9250, full (ctx 2000) -> 11000.
    # none: 9875 + .4*19750 + .96*18800 + .96*(4625 + .5*9250)            = 44703
    # full: 9875 + .4*30750 + .6*18800 + .36*27600 + .96*(4625 + .5*11000) = 53111
    wl = workload(copy.deepcopy(TWO_PHASES))
    pol = policy({"lo": "a", "hi": "b"},
                 escalation={"after_failures": 1, "retry_context": retry_context},
                 handoff={"mode": "summary", "summary_tokens": 300, "summarizer": "hi"})
    r = ref.evaluate(TWO, wl, policy=pol)
    assert r["spend_per_task"] == pytest.approx(spend, rel=1e-12)
    assert r["completion_rate"] == pytest.approx(0.96, rel=1e-12)
    assert r["cost_per_completed_task"] == pytest.approx(spend / 0.96, rel=1e-12)


# --- no variation: the old numbers, digit for digit -----------------------------------------------

@pytest.mark.parametrize("var", [None, {}, {"difficulty": 0.0, "tokens": 0.0},
                                 {"difficulty": 0, "tokens": 0, "tokens_follow_difficulty": 0.7}])
def test_zero_variation_is_the_old_model_exactly(var):
    p, w, pol = _load("prices.yaml"), _load("workload.yaml"), _load("policy.yaml")
    base = [ref.evaluate(p, w, policy=pol), ref.evaluate(p, w, model="mid")]
    w2 = copy.deepcopy(w)
    if var is not None:
        w2["variation"] = var
        w2["task_types"][1]["variation"] = dict(var)
    assert [ref.evaluate(p, w2, policy=pol), ref.evaluate(p, w2, model="mid")] == base


def test_quadrature_path_without_variation_matches_the_float_path():
    """The array walk and the quadrature (s = t = 0 forced through them) against the float walk:
    this checks the integration machinery itself."""
    p, w, pol = _load("prices.yaml"), _load("workload.yaml"), _load("policy.yaml")
    p["models"]["top"]["long_context"]["above"] = 9000      # crossed inside the phases
    for kw in ({"policy": pol}, {"model": "top"}):
        a = ref.evaluate(p, w, **kw)
        b = ref.evaluate(p, w, integrate=True, **kw)
        for k in KEYS:
            assert b[k] == pytest.approx(a[k], rel=1e-12, abs=1e-15), k
        assert b["spend_by_model"].keys() == a["spend_by_model"].keys()


# --- hand-integrable cases -----------------------------------------------------------------------

ONE = prices(m=model("midrange", 3.0, 15.0, 0.3, score=70,
                     lc={"above": 6000, "input": 6.0, "output": 22.5, "cache_read": 0.6}))


def one_phase(success=None, difficulty=None, calls=1, K=1, **kw):
    ph = {"phase": "implement", "calls": calls, "input_tokens": 3000, "output_tokens": 500}
    if success is not None:
        ph["success"] = success
    if difficulty is not None:
        ph["difficulty"] = difficulty
    return workload([ph], max_attempts=K, **kw)


@pytest.mark.parametrize("s", [0.3, 1.3, 4.0])
@pytest.mark.parametrize("how", ["map", "logistic"])
def test_one_attempt_completion_is_p_for_any_spread(s, how):
    """One phase, one attempt: the completion rate is the rate p itself, whatever s."""
    sig = {"cross_file": {"share": 0.3, "difficulty": 7}}
    if how == "map":
        wl = one_phase(success={"m": 0.37}, signals=sig)
        expect = 0.37
    else:
        wl = one_phase(difficulty=62, signals=sig)
        p0, p1 = special.expit((70 - 62) / 10), special.expit((70 - 69) / 10)
        expect = 0.7 * p0 + 0.3 * p1
    wl["variation"] = {"difficulty": s, "tokens": 0.6, "tokens_follow_difficulty": 0.5}
    r = ref.evaluate(ONE, wl, model="m")
    assert r["completion_rate"] == pytest.approx(expect, rel=1e-12)


@pytest.mark.parametrize("r", [0.0, 0.5, 1.0])
def test_token_spread_without_long_context_keeps_the_spend(r):
    """Without long context a call's cost is linear in u and E[u] = 1: with s = 0 the spend is
    the spend without variation; with s > 0 and r = 0 the token spread changes nothing either."""
    p = copy.deepcopy(ONE)
    del p["models"]["m"]["long_context"]
    wl = one_phase(success={"m": [0.3, 0.6, 0.8]}, calls=3, K=3,
                   handoff={"mode": "full_history"})
    plain = ref.evaluate(p, wl, model="m")
    wl["variation"] = {"difficulty": 0.0, "tokens": 0.9, "tokens_follow_difficulty": r}
    assert ref.evaluate(p, wl, model="m")["spend_per_task"] == \
        pytest.approx(plain["spend_per_task"], rel=1e-12)
    wl["variation"] = {"difficulty": 1.7, "tokens": 0.0}
    hard = ref.evaluate(p, wl, model="m")
    wl["variation"] = {"difficulty": 1.7, "tokens": 0.9, "tokens_follow_difficulty": 0.0}
    assert ref.evaluate(p, wl, model="m")["spend_per_task"] == \
        pytest.approx(hard["spend_per_task"], rel=1e-12)
    # and s does change it (correlated retries): the checks above are not vacuous
    assert hard["spend_per_task"] != pytest.approx(plain["spend_per_task"], rel=1e-3)


@pytest.mark.parametrize("t", [0.4, 1.0, 2.0])
@pytest.mark.parametrize("r", [0.0, 0.5, 0.99, 1.0])
@pytest.mark.parametrize("s", [0.0, 2.0])
def test_long_context_against_the_lognormal_closed_form(t, r, s):
    """One call, one attempt: spend = c_base E[u 1{u X <= T}] + c_long E[u 1{u X > T}] with
    ln u ~ N(-t^2/2, t^2): E[u 1{u > k}] = Phi((t^2/2 - ln k) / t).  The reference conditions on
    z and integrates over it numerically; r and s must not matter here."""
    wl = one_phase(success={"m": 0.5})
    wl["variation"] = {"difficulty": s, "tokens": t, "tokens_follow_difficulty": r}
    X, T = 1000 + 3000, 6000
    c_base = (500 * 0.3 + 500 * 3.0 + 3000 * 3.0 + 500 * 15.0) / 1e6
    c_long = (500 * 0.6 + 500 * 6.0 + 3000 * 6.0 + 500 * 22.5) / 1e6
    above = special.ndtr((t * t / 2 - math.log(T / X)) / t)
    expect = c_base * (1 - above) + c_long * above
    got = ref.evaluate(ONE, wl, model="m")["spend_per_task"]
    assert got == pytest.approx(expect, rel=1e-10)
    assert c_long * above > 0.05 * expect           # the threshold does bite


def _b(p, s):
    f = lambda b: integrate.quad(lambda z: special.expit(b - s * z) * np.exp(-z * z / 2),
                                 -40, 40, epsabs=1e-14, epsrel=1e-13, limit=200)[0] \
        / math.sqrt(2 * math.pi) - p
    return optimize.brentq(f, -80, 80, xtol=1e-14)


@pytest.mark.parametrize("s, t, r", [(1.5, 0.8, 0.6), (3.0, 1.2, 0.95), (0.7, 0.5, 1.0)])
def test_two_attempts_with_long_context_against_nested_quad(s, t, r):
    """A ladder a -> b with one call per attempt, both models with long-context rates: the
    expectation over (z, e) by nested adaptive quadrature in SciPy (e numerically, with the
    threshold as a breakpoint), against the reference, to 1e-8."""
    px = prices(a=model("budget", 1.0, 4.0, 0.1, lc={"above": 5000, "input": 2.0}),
                b=model("premium", 5.0, 25.0, 0.5,
                        lc={"above": 9000, "input": 10.0, "output": 37.5, "cache_read": 1.0}))
    wl = workload([{"phase": "implement", "calls": 1, "input_tokens": 3000, "output_tokens": 500,
                    "success": {"a": 0.4, "b": 0.7}}],
                  variation={"difficulty": s, "tokens": t, "tokens_follow_difficulty": r})
    pol = policy({"lo": "a", "hi": "b"})
    got = ref.evaluate(px, wl, policy=pol)

    def cost(u, ctx, rates, above):
        inp, out, cr = rates[1] if u * (ctx + 3000) > above else rates[0]
        return u * (0.5 * ctx * cr + 0.5 * ctx * inp + 3000 * inp + 500 * out) / 1e6

    ra = ((1.0, 4.0, 0.1), (2.0, 4.0, 2.0))
    rb = ((5.0, 25.0, 0.5), (10.0, 37.5, 1.0))
    ba, bb = _b(0.4, s), _b(0.7, s)
    q = math.sqrt(1 - r * r)
    phi = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)

    def given_z(z):
        fail_a = 1 - special.expit(ba - s * z)

        def f(e):
            u = math.exp(t * (r * z + q * e) - t * t / 2)
            return (cost(u, 1000, ra, 5000) + fail_a * cost(u, 4500, rb, 9000)) * phi(e)
        if q == 0:
            return f(0.0) / phi(0.0)
        pts = [(math.log(T / X) + t * t / 2 - t * r * z) / (t * q)
               for X, T in ((4000, 5000), (7500, 9000))]
        pts = [p for p in pts if -12 < p < 12]
        return integrate.quad(f, -12, 12, points=pts or None, epsabs=1e-15, epsrel=1e-12,
                              limit=400)[0]

    zpts = []
    if q == 0:      # r = 1: the thresholds are jumps in z
        zpts = [(math.log(T / X) + t * t / 2) / (t * r) for X, T in ((4000, 5000), (7500, 9000))]
    spend = integrate.quad(lambda z: given_z(z) * phi(z), -12, 12, points=zpts or None,
                           epsabs=1e-15, epsrel=1e-11, limit=400)[0]
    done = integrate.quad(lambda z: (1 - (1 - special.expit(ba - s * z))
                                     * (1 - special.expit(bb - s * z))) * phi(z),
                          -12, 12, epsabs=1e-15, epsrel=1e-12, limit=200)[0]
    assert got["spend_per_task"] == pytest.approx(spend, rel=1e-8)
    assert got["completion_rate"] == pytest.approx(done, rel=1e-8)
    # the correlation is visible: completion below the independent-coins 1 - 0.6 * 0.3
    assert done < 0.82 - 0.01


def _var_scenario():
    px = prices(cheap=model("budget", 1.0, 2.0, 0.1, score=50, lc={"above": 5200, "output": 3.0}),
                mid=model("midrange", 3.0, 15.0, 0.3, score=70, lc={"above": 9000, "input": 6.0}),
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
    wl = workload(phases, max_attempts=3, feedback_gain=0.4, cache_hit_rate=0.6,
                  signals={"cross_file": {"share": 0.4, "difficulty": 5}},
                  defects={"phases": ["implement"], "rate": {"budget": 0.1, "midrange": 0.05},
                           "catch_rate": {"premium": 0.6}})
    pol = {"version": 1, "name": "three",
           "tiers": {"budget": "cheap", "midrange": "mid", "premium": "top"},
           "routes": {"default": "midrange", "search": "budget", "review": "premium"},
           "escalation": {"after_failures": 2},
           "signals": {"cross_file": {"raise": 1, "phases": ["implement"]}},
           "handoff": {"mode": "summary", "summary_tokens": 3000, "summarizer": "midrange"}}
    return px, wl, pol


@pytest.mark.parametrize("var", [
    {"difficulty": 1.3, "tokens": 0.7, "tokens_follow_difficulty": 0.5},
    {"difficulty": 3.0, "tokens": 1.5, "tokens_follow_difficulty": 0.99},
    {"difficulty": 0.5, "tokens": 1.0, "tokens_follow_difficulty": 1.0},
    {"difficulty": 6.0, "tokens": 0.3},
])
def test_quadrature_converged(var):
    """Halving every panel moves no result by more than 1e-11 relative."""
    px, wl, pol = _var_scenario()
    wl["variation"] = var
    a = ref.evaluate(px, wl, policy=pol)
    b = ref.evaluate(px, wl, policy=pol, refine=2)
    for k in KEYS:
        assert b[k] == pytest.approx(a[k], rel=1e-11, abs=1e-15), k


def test_task_type_variation_replaces_the_workloads():
    px, wl, pol = _var_scenario()
    wl["variation"] = {"difficulty": 2.0, "tokens": 0.5}
    own = copy.deepcopy(wl)
    own["task_types"][0]["variation"] = {"tokens": 0.5}      # difficulty 0 for this type
    direct = copy.deepcopy(wl)
    direct["variation"] = {"difficulty": 0.0, "tokens": 0.5}
    assert ref.evaluate(px, own, policy=pol) == ref.evaluate(px, direct, policy=pol)
    assert ref.evaluate(px, own, policy=pol) != ref.evaluate(px, wl, policy=pol)


def test_difficulty_spread_makes_cascades_dearer():
    """What shared/data/README.md measures: with correlated failures a cheap-then-dear ladder
    completes less and costs more per completed task than independent coins say."""
    px, wl, pol = _var_scenario()
    plain = ref.evaluate(px, wl, policy=pol)
    wl["variation"] = {"difficulty": 2.0}
    hard = ref.evaluate(px, wl, policy=pol)
    assert hard["completion_rate"] < plain["completion_rate"] - 0.01
    assert hard["cost_per_completed_task"] > plain["cost_per_completed_task"]

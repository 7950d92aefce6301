"""The Monte Carlo engine agrees with the analytic engine (SPEC §3.4) within its own standard
errors, is reproducible by seed, and its extras (spend by model, monthly totals, budget
coverage) add up."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import helpers as H
from costsim.engine import montecarlo as mc
from costsim.engine.analytic import evaluate
from costsim.api import compare, load_inputs, parse_strategy
from costsim.cli import app
from costsim.engine.compile import Strategy, compile_ladders

HEADLINE = ("spend_per_task", "completion_rate", "cost_per_completed_task", "defect_rate",
            "review_minutes", "expected_attempts", "expected_retries")
Z = 4.5          # a few standard errors: 7 fields x ~10 strategies stay far from false alarms


def fixture_ladders(fixtures, name):
    table, _, wl, _, pols = load_inputs(fixtures / "prices.yaml", [fixtures / "policy.yaml"],
                                        fixtures / "workload.yaml")
    return compile_ladders(table, parse_strategy(name, table, pols), wl)


def assert_agrees(L, samples=200_000, seed=7, z=Z):
    exact = evaluate(L)
    est = mc.simulate_tasks(L, samples, seed)
    for f in HEADLINE:
        a, b, se = getattr(exact, f), getattr(est, f), est.stderr[f]
        if se == 0:
            # No spread in the sample does not mean none in the model: an event of
            # probability 1e-5 is usually absent from 60k draws. Allow what a sample of this
            # size cannot see (rule of three, generously: 10/n of the value's scale).
            assert b == pytest.approx(a, rel=10.0 / samples, abs=1e-12), f
        else:
            assert abs(b - a) <= z * se, f"{f}: analytic {a}, MC {b} ± {se}"
    for m, v in exact.spend_by_model.items():
        assert est.spend_by_model[m] == pytest.approx(v, rel=0.05, abs=1e-6), m
    return exact, est


def summary_escalation_defects(tmp_path):
    """Built here: summary handoff with a budget summarizer, escalation after one failure,
    two defect phases and a review whose catch rate depends on the model that succeeds."""
    p = H.prices({
        "b": H.model("p1", "budget", 0.5, 1.5, cache_read=0.05, coding_score=55),
        "m": H.model("p1", "midrange", 3.0, 15.0, cache_read=0.3, coding_score=70),
        "t": H.model("p2", "premium", 5.0, 25.0, cache_read=0.5, coding_score=80,
                     long_context={"above": 20000, "input": 10.0, "output": 37.5}),
    })
    w = H.workload([
        {"name": "bug", "share": 0.7, "phases": [
            {"phase": "search", "calls": 2, "input_tokens": 1500, "output_tokens": 200,
             "difficulty": 30},
            {"phase": "implement", "calls": 4, "input_tokens": 2500, "output_tokens": 900,
             "difficulty": 72},
            {"phase": "test_repair", "calls": 2, "input_tokens": 2000, "output_tokens": 600,
             "difficulty": 65},
            {"phase": "review", "calls": 1, "input_tokens": 5000, "output_tokens": 500,
             "success": {"budget": [0.6, 0.8], "midrange": 0.9, "premium": 0.97}}]},
        {"name": "doc", "share": 0.3, "max_attempts": 2, "phases": [
            {"phase": "docs", "calls": 1, "input_tokens": 1000, "output_tokens": 800,
             "difficulty": 50}]},
    ], max_attempts=4, system_tokens=3000, cache_hit_rate=0.6, feedback_gain=0.4,
        signals={"cross_file": {"share": 0.3, "difficulty": 6},
                 "security_sensitive": {"share": 0.1, "difficulty": 10}},
        defects={"phases": ["implement", "test_repair"],
                 "rate": {"budget": 0.15, "midrange": 0.06, "premium": 0.03},
                 "catch_rate": {"budget": 0.2, "midrange": 0.5, "premium": 0.8},
                 "review_minutes": {"base": 8, "per_defect": 40}})
    pol = H.policy({"budget": "b", "midrange": "m", "premium": "t"},
                   {"default": "budget", "implement": "midrange", "review": "budget"},
                   escalation={"after_failures": 1},
                   signals={"cross_file": {"raise": 1},
                            "security_sensitive": {"min_tier": "premium",
                                                   "phases": ["implement", "review"]}},
                   handoff={"mode": "summary", "summary_tokens": 800, "summarizer": "budget"})
    table, wl, pols = H.load_all(tmp_path, p, w, [pol])
    return table, wl, pols


# --- agreement with the analytic engine ----------------------------------------------------

@pytest.mark.parametrize("name", ["three-tier", "single:cheap", "single:mid", "single:top"])
def test_fixture_strategies_agree_with_analytic(fixtures, name):
    assert_agrees(fixture_ladders(fixtures, name))


def test_summary_handoff_escalation_and_defects_agree(tmp_path):
    table, wl, pols = summary_escalation_defects(tmp_path)
    for s in [Strategy.routed(pols[0]), Strategy.single("b"), Strategy.single("t")]:
        L = compile_ladders(table, s, wl)
        assert L.summ_model >= 0 if s.kind == "routed" else True
        exact, est = assert_agrees(L)
        assert exact.defect_rate > 0.005                 # the defect path is exercised
        assert exact.completion_rate < 0.999             # so is abandonment


def test_bundled_default_routing_agrees():
    table, _, wl, _, pols = load_inputs()
    for p in pols[:2]:
        assert_agrees(compile_ladders(table, Strategy.routed(p), wl), samples=150_000)


def test_400k_samples_within_one_percent(fixtures, tmp_path):
    """The issue's acceptance bar: 400k samples land within 1% of the exact expectation."""
    table, wl, pols = summary_escalation_defects(tmp_path)
    ladders = [fixture_ladders(fixtures, "three-tier"),
               compile_ladders(table, Strategy.routed(pols[0]), wl)]
    for L in ladders:
        exact = evaluate(L)
        est = mc.simulate_tasks(L, 400_000, seed=3)
        for f in ("spend_per_task", "cost_per_completed_task", "completion_rate",
                  "expected_attempts"):
            assert getattr(est, f) == pytest.approx(getattr(exact, f), rel=0.01), f


def test_hand_worked_single_phase(tmp_path):
    """One phase, p = 0.7, two attempts, no cache, no system prompt: attempt 1 costs
    1000*1 + 100*2 = 1200 per 1M (= $0.0012); attempt 2 resends attempt 1's 1100 tokens:
    (1100+1000)*1 + 100*2 = 2300 -> $0.0023. E[spend] = 0.0012 + 0.3*0.0023 = 0.00189,
    completion 0.7 + 0.3*0.7 = 0.91, attempts 1.3, retries 0.3."""
    p = H.prices({"x": H.model("acme", "budget", 1.0, 2.0)})
    w = H.workload([{"name": "t", "share": 1.0, "phases": [
        {"phase": "implement", "calls": 1, "input_tokens": 1000, "output_tokens": 100,
         "success": {"x": 0.7}}]}], max_attempts=2)
    table, wl, _ = H.load_all(tmp_path, p, w)
    L = compile_ladders(table, Strategy.single("x"), wl)
    est = mc.simulate_tasks(L, 400_000, seed=11)
    se = est.stderr
    assert abs(est.spend_per_task - 0.00189) <= Z * se["spend_per_task"]
    assert abs(est.completion_rate - 0.91) <= Z * se["completion_rate"]
    assert abs(est.cost_per_completed_task - 0.00189 / 0.91) <= Z * se["cost_per_completed_task"]
    assert abs(est.expected_attempts - 1.3) <= Z * se["expected_attempts"]
    assert abs(est.expected_retries - 0.3) <= Z * se["expected_retries"]
    # a task costs $0.0012 (p 0.7) or $0.0035 (second attempt, p 0.3)
    assert est.cost_percentiles["p50"] == pytest.approx(0.0012)
    assert est.cost_percentiles["p90"] == pytest.approx(0.0035)
    assert est.cost_percentiles["p99"] == pytest.approx(0.0035)


def test_defects_hand_worked(tmp_path):
    """implement always succeeds with a defect rate 0.5; review always succeeds and catches 0.4:
    a task ships a defect with 0.5 * 0.6 = 0.3; review minutes 10 + 30*0.3 = 19."""
    p = H.prices({"x": H.model("acme", "budget", 1.0, 2.0)})
    w = H.workload([{"name": "t", "share": 1.0, "phases": [
        {"phase": "implement", "calls": 1, "input_tokens": 10, "output_tokens": 10,
         "success": {"x": 1.0}},
        {"phase": "review", "calls": 1, "input_tokens": 10, "output_tokens": 10,
         "success": {"x": 1.0}}]}],
        defects={"phases": ["implement"], "rate": {"x": 0.5}, "catch_rate": {"x": 0.4},
                 "review_minutes": {"base": 10, "per_defect": 30}})
    table, wl, _ = H.load_all(tmp_path, p, w)
    L = compile_ladders(table, Strategy.single("x"), wl)
    est = mc.simulate_tasks(L, 200_000, seed=5)
    assert est.completion_rate == 1.0
    assert est.stderr["completion_rate"] == 0.0
    assert abs(est.defect_rate - 0.3) <= Z * est.stderr["defect_rate"]
    assert abs(est.review_minutes - 19.0) <= Z * est.stderr["review_minutes"]
    assert est.expected_retries == 0.0


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(p1=st.floats(0.05, 1.0), p2=st.floats(0.0, 1.0), k=st.integers(1, 5),
       gain=st.floats(0.0, 1.0), seed=st.integers(0, 2**32 - 1))
def test_random_ladders_agree(tmp_path_factory, p1, p2, k, gain, seed):
    tmp = tmp_path_factory.mktemp("mc")
    pr = H.prices({"a": H.model("acme", "budget", 1.0, 4.0, coding_score=60),
                   "b": H.model("beta", "premium", 5.0, 20.0, coding_score=80)})
    w = H.workload([
        {"name": "t1", "share": 0.6, "phases": [
            {"phase": "search", "calls": 2, "input_tokens": 500, "output_tokens": 50,
             "success": {"budget": p1, "premium": [p1, p2]}},
            {"phase": "implement", "calls": 3, "input_tokens": 900, "output_tokens": 300,
             "difficulty": 65}]},
        {"name": "t2", "share": 0.4, "phases": [
            {"phase": "implement", "calls": 1, "input_tokens": 200, "output_tokens": 100,
             "success": {"budget": p2, "premium": p1}}]}],
        max_attempts=k, feedback_gain=gain,
        defects={"phases": ["implement"], "rate": {"budget": 0.2, "premium": 0.05}})
    pol = H.policy({"budget": "a", "premium": "b"}, {"default": "budget"},
                   escalation={"after_failures": 1})
    table, wl, pols = H.load_all(tmp, pr, w, [pol])
    assert_agrees(compile_ladders(table, Strategy.routed(pols[0]), wl), samples=60_000,
                  seed=seed, z=5.0)


# --- reproducibility ----------------------------------------------------------------------

def test_same_seed_identical_different_seed_different(fixtures):
    L = fixture_ladders(fixtures, "three-tier")
    a = mc.simulate_tasks(L, 300_000, seed=42)
    b = mc.simulate_tasks(L, 300_000, seed=42)
    c = mc.simulate_tasks(L, 300_000, seed=43)
    assert a == b
    assert a.spend_per_task != c.spend_per_task
    assert a.cost_percentiles != c.cost_percentiles or a.completion_rate != c.completion_rate


def test_thread_count_does_not_change_the_output(fixtures):
    L = fixture_ladders(fixtures, "three-tier")
    n = 3 * mc.CHUNK + 1234
    assert mc.simulate_tasks(L, n, 9, threads=1) == mc.simulate_tasks(L, n, 9, threads=2)
    m1 = mc.simulate_months(L, 700, 500, 9, threads=1)
    m2 = mc.simulate_months(L, 700, 500, 9, threads=2)
    assert np.array_equal(m1.spend, m2.spend) and np.array_equal(m1.completed, m2.completed)


def test_chunk_generators_are_children_of_the_seed():
    for j in (0, 3):
        a = mc.child_rng(123, j).random(5)
        b = np.random.default_rng(123).spawn(j + 1)[j].random(5)
        assert np.array_equal(a, b)


# --- accounting ---------------------------------------------------------------------------

def test_spend_by_model_and_provider_add_up(fixtures):
    L = fixture_ladders(fixtures, "three-tier")
    est = mc.simulate_tasks(L, 200_000, seed=1)
    assert sum(est.spend_by_model.values()) == pytest.approx(est.spend_per_task, rel=1e-9)
    assert sum(est.spend_by_provider.values()) == pytest.approx(est.spend_per_task, rel=1e-9)
    assert set(est.spend_by_provider) == {"acme", "zenith"}


def test_months_add_up_and_match_the_analytic_mean(fixtures):
    L = fixture_ladders(fixtures, "three-tier")
    exact = evaluate(L)
    N, months = 250, 4000
    sim = mc.simulate_months(L, N, months, seed=2)
    assert sim.spend.shape == (months,) and sim.completed.shape == (months,)
    total = sum(sim.by_provider.values())
    np.testing.assert_allclose(total, sim.spend, rtol=1e-12)
    assert (sim.completed <= N).all() and (sim.completed >= 0).all()
    se = sim.spend.std(ddof=1) / math.sqrt(months)
    assert abs(sim.spend.mean() - N * exact.spend_per_task) <= Z * se
    se_c = sim.completed.std(ddof=1) / math.sqrt(months)
    assert abs(sim.completed.mean() - N * exact.completion_rate) <= Z * se_c
    for prov, v in exact.spend_by_provider.items():
        assert sim.by_provider[prov].mean() == pytest.approx(N * v, rel=0.01)


def test_months_larger_than_a_chunk(fixtures):
    """A month longer than a chunk straddles chunks; totals still add up per month."""
    L = fixture_ladders(fixtures, "single:cheap")
    N = mc.CHUNK + 5000
    sim = mc.simulate_months(L, N, 3, seed=4)
    exact = evaluate(L)
    assert sim.spend == pytest.approx(np.full(3, N * exact.spend_per_task), rel=0.01)


def test_coverage_of_a_deterministic_cost(tmp_path):
    """Success is certain, so every task costs the same $0.0012: $1 covers floor(1/0.0012)=833."""
    p = H.prices({"x": H.model("acme", "budget", 1.0, 2.0)})
    w = H.workload([{"name": "t", "share": 1.0, "phases": [
        {"phase": "implement", "calls": 1, "input_tokens": 1000, "output_tokens": 100,
         "success": {"x": 1.0}}]}])
    table, wl, _ = H.load_all(tmp_path, p, w)
    L = compile_ladders(table, Strategy.single("x"), wl)
    cov = mc.simulate_coverage(L, 1.0, 0.9, seed=0, runs=300)
    assert cov.method == "simulated" and cov.tasks == 833


def test_coverage_matches_the_monthly_quantile(fixtures):
    """If B covers N tasks at confidence c, then N tasks cost at most B in >= c of months and
    N + a few percent more tasks do not."""
    L = fixture_ladders(fixtures, "three-tier")
    exact = evaluate(L)
    B = 200 * exact.spend_per_task
    cov = mc.simulate_coverage(L, B, 0.9, seed=1, runs=4000)
    assert cov.method == "simulated"
    n = cov.tasks
    assert 150 < n < 200
    at_n = mc.simulate_months(L, n, 4000, seed=2).spend
    above = mc.simulate_months(L, int(n * 1.08), 4000, seed=3).spend
    assert (at_n <= B).mean() >= 0.88
    assert (above <= B).mean() < 0.9


# --- the compare API and CLI --------------------------------------------------------------

def test_compare_engine_montecarlo(fixtures):
    kw = dict(prices=fixtures / "prices.yaml", policies=[fixtures / "policy.yaml"],
              workload=fixtures / "workload.yaml")
    exact = compare(**kw)
    sim = compare(**kw, engine="montecarlo", samples=100_000, seed=5)
    assert sim.engine == "montecarlo" and sim.settings == {"samples": 100_000, "seed": 5}
    for s in sim.strategies:
        e = exact.get(s.name)
        extra = s.extra["montecarlo"]
        assert extra["samples"] == 100_000 and extra["seed"] == 5
        q = extra["cost_percentiles"]
        assert q["p50"] <= q["p90"] <= q["p99"]
        for f in HEADLINE:
            se = extra["stderr"][f]
            assert abs(getattr(s, f) - getattr(e, f)) <= Z * se + 1e-12, (s.name, f)
        assert s.spend_per_task != e.spend_per_task      # really overwritten by the MC estimate
        assert set(s.spend_by_provider) == set(e.spend_by_provider)


def test_cli_compare_montecarlo_json_and_table(fixtures):
    args = ["compare", "--prices", str(fixtures / "prices.yaml"), "--policy",
            str(fixtures / "policy.yaml"), "--workload", str(fixtures / "workload.yaml"),
            "--engine", "montecarlo", "--samples", "50000", "--seed", "3"]
    r = CliRunner().invoke(app, args + ["--format", "json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["engine"] == "montecarlo" and d["settings"] == {"samples": 50000, "seed": 3}
    for s in d["strategies"]:
        assert set(s["montecarlo"]["stderr"]) >= set(HEADLINE)
        assert set(s["montecarlo"]["cost_percentiles"]) == {"p50", "p90", "p99"}
    again = CliRunner().invoke(app, args + ["--format", "json"])
    assert again.stdout == r.stdout
    t = CliRunner().invoke(app, args)
    assert t.exit_code == 0 and "Monte Carlo" in t.stdout and "P99" in t.stdout
    md = CliRunner().invoke(app, args + ["--format", "markdown"])
    assert md.exit_code == 0 and "| strategy | ± cost per completed |" in md.stdout


def test_negative_seed_is_a_user_error(fixtures):
    args = ["compare", "--prices", str(fixtures / "prices.yaml"), "--policy",
            str(fixtures / "policy.yaml"), "--workload", str(fixtures / "workload.yaml"),
            "--engine", "montecarlo", "--samples", "1000", "--seed", "-1"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2 and "seed must be a non-negative integer" in r.stderr


def test_many_attempts_do_not_overflow(tmp_path):
    """More than 127 attempts per phase leave the int8 fast path; p = 0.01 over 150 attempts
    completes with 1 - 0.99**150."""
    p = H.prices({"x": H.model("acme", "budget", 1.0, 2.0)})
    w = H.workload([{"name": "t", "share": 1.0, "phases": [
        {"phase": "implement", "calls": 1, "input_tokens": 10, "output_tokens": 10,
         "success": {"x": 0.01}}]}], max_attempts=100)
    table, wl, _ = H.load_all(tmp_path, p, w)
    wl.max_attempts = 150       # above the files' limit (MAX_ATTEMPTS): only the API can ask
    est = mc.simulate_tasks(compile_ladders(table, Strategy.single("x"), wl), 100_000, seed=1)
    assert abs(est.completion_rate - (1 - 0.99 ** 150)) <= Z * est.stderr["completion_rate"]


def test_review_that_is_also_a_defect_phase(tmp_path):
    """Review is a defect phase and escalates: its own defect and its catch come from the same
    succeeding attempt. implement: budget, p 1, rate 0.3. review: attempt 1 budget (p 0.5,
    rate 0.3, catch 0.1), attempt 2 premium (p 1, rate 0.01, catch 0.9).
    Ship | review at 1: 1 - (1 - .9*.3)(1 - .9*.3) = 0.4671
    Ship | review at 2: 1 - (1 - .1*.3)(1 - .1*.01) = 0.03097     -> defect rate 0.249035
    (treating the review's defect as independent of its catch would give 0.208435)."""
    p = H.prices({"b": H.model("acme", "budget", 1.0, 2.0),
                  "t": H.model("zen", "premium", 5.0, 25.0)})
    w = H.workload([{"name": "t", "share": 1.0, "phases": [
        {"phase": "implement", "calls": 1, "input_tokens": 100, "output_tokens": 100,
         "success": {"budget": 1.0, "premium": 1.0}},
        {"phase": "review", "calls": 1, "input_tokens": 100, "output_tokens": 100,
         "success": {"budget": 0.5, "premium": 1.0}}]}],
        defects={"phases": ["implement", "review"], "rate": {"budget": 0.3, "premium": 0.01},
                 "catch_rate": {"budget": 0.1, "premium": 0.9}})
    pol = H.policy({"budget": "b", "premium": "t"}, {"default": "budget"},
                   escalation={"after_failures": 1})
    table, wl, pols = H.load_all(tmp_path, p, w, [pol])
    L = compile_ladders(table, Strategy.routed(pols[0]), wl)
    est = mc.simulate_tasks(L, 300_000, seed=8)
    assert abs(est.defect_rate - 0.249035) <= Z * est.stderr["defect_rate"]
    assert evaluate(L).defect_rate == pytest.approx(0.249035, rel=1e-9)


# --- tasks that differ (variation) --------------------------------------------------------

from test_variation import setup as varied_setup  # noqa: E402


@pytest.mark.parametrize("s, t, r", [(1.3, 0.7, 0.5), (3.0, 0.0, 0.0), (0.0, 1.0, 0.7),
                                     (1.3, 0.9, 1.0), (2.0, 0.6, 0.95)])
def test_variation_agrees_with_analytic(tmp_path, s, t, r):
    """Tasks drawn with continuous difficulty and size agree with the analytic engine's
    integral within sampling error (long-context thresholds in reach)."""
    table, wl, strategies = varied_setup(tmp_path, {"difficulty": s, "tokens": t,
                                                    "tokens_follow_difficulty": r})
    for strat in strategies:
        L = compile_ladders(table, strat, wl)
        assert L.variation is not None
        assert_agrees(L, samples=150_000, seed=11)


def test_variation_changes_what_monte_carlo_sees(tmp_path):
    """The same workload with and without the spread: the samples tell them apart (so the
    agreement above is not the analytic engine agreeing with itself)."""
    var = {"difficulty": 2.0, "tokens": 0.9, "tokens_follow_difficulty": 0.8}
    table, wl, strategies = varied_setup(tmp_path, var)
    (tmp_path / "plain").mkdir()
    t2, w2, _ = varied_setup(tmp_path / "plain", None)
    a = mc.simulate_tasks(compile_ladders(table, strategies[0], wl), 100_000, seed=1)
    b = mc.simulate_tasks(compile_ladders(t2, strategies[0], w2), 100_000, seed=1)
    for f in ("completion_rate", "cost_per_completed_task"):
        se = math.hypot(a.stderr[f], b.stderr[f])
        assert abs(getattr(a, f) - getattr(b, f)) > 6 * se, f
    assert a.cost_percentiles["p99"] > 1.5 * b.cost_percentiles["p99"]


def test_per_task_percentiles_include_the_size_spread(tmp_path):
    """One certain call, no long context, size spread t = 0.8: a task costs c*u with u
    lognormal(-t^2/2, t), so P50/P90/P99 are c*exp(-t^2/2 + t*q) for the normal quantiles q."""
    from statistics import NormalDist

    p = H.prices({"x": H.model("acme", "budget", 1.0, 2.0)})
    w = H.workload([{"name": "t", "share": 1.0, "phases": [
        {"phase": "implement", "calls": 1, "input_tokens": 1000, "output_tokens": 100,
         "success": {"x": 1.0}}]}], variation={"tokens": 0.8, "tokens_follow_difficulty": 0.5})
    table, wl, _ = H.load_all(tmp_path, p, w)
    L = compile_ladders(table, Strategy.single("x"), wl)
    est = mc.simulate_tasks(L, 400_000, seed=4)
    c, t = 0.0012, 0.8
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        want = c * math.exp(-t * t / 2 + t * NormalDist().inv_cdf(q))
        assert est.cost_percentiles[name] == pytest.approx(want, rel=0.02), name
    assert est.spend_per_task == pytest.approx(c, rel=0.01)


def test_cell_moments_match_simulated_tasks(tmp_path):
    """The exact per-task mean and variance (used for months built from outcome counts and for
    the tasks a budget covers) match those of simulated tasks."""
    from costsim.engine.moments import task_spend_variance

    for var in (None, {"difficulty": 1.3, "tokens": 0.9, "tokens_follow_difficulty": 0.6},
                {"difficulty": 2.0, "tokens": 0.5, "tokens_follow_difficulty": 1.0}):
        d = tmp_path / str(abs(hash(str(var))))
        d.mkdir()
        table, wl, strategies = varied_setup(d, var)
        L = compile_ladders(table, strategies[0], wl)
        mu, v = task_spend_variance(L)
        assert mu == pytest.approx(evaluate(L).spend_per_task, rel=1e-9)
        plan = mc.make_plan(L)
        rng = np.random.default_rng(5)
        x = np.concatenate([mc.sample_chunk(plan, mc.CHUNK, rng).cost for _ in range(8)])
        n = len(x)
        se = math.sqrt(max(((x - x.mean()) ** 4).mean() - x.var() ** 2, 0.0) / n)
        assert abs(x.var() - v) <= 4.5 * se, (var, x.var(), v)


# --- months: varying volumes, and months built from outcome counts ------------------------

def test_month_volumes_are_gamma_poisson():
    """Counts with mean m and cv c: variance m + c^2 m^2; cv 0 is Poisson; None is fixed."""
    assert mc.month_volumes(500, None, 10, 0) is None
    n = mc.month_volumes(2000.0, 0.3, 200_000, 3)
    assert n.mean() == pytest.approx(2000, rel=0.005)
    assert n.var() == pytest.approx(2000 + 0.09 * 2000 ** 2, rel=0.02)
    n0 = mc.month_volumes(2000.0, 0.0, 200_000, 3)
    assert n0.var() == pytest.approx(2000, rel=0.02)
    assert (mc.month_volumes(2000.0, 0.3, 50, 7) == mc.month_volumes(2000.0, 0.3, 50, 7)).all()


def test_months_with_a_varying_volume_are_the_negative_binomial(tmp_path):
    """Every task costs the same $0.0012 and completes, so a month costs 0.0012 N with N
    negative binomial: its quantiles are scipy's."""
    from scipy import stats

    p = H.prices({"x": H.model("acme", "budget", 1.0, 2.0)})
    w = H.workload([{"name": "t", "share": 1.0, "phases": [
        {"phase": "implement", "calls": 1, "input_tokens": 1000, "output_tokens": 100,
         "success": {"x": 1.0}}]}])
    table, wl, _ = H.load_all(tmp_path, p, w)
    L = compile_ladders(table, Strategy.single("x"), wl)
    cv = 0.25
    k = 1 / cv ** 2                                   # NB: n = k, p = k / (k + mean)
    for method, mean, months in (("tasks", 1000.0, 3000), ("outcomes", 3000.0, 20_000)):
        sim = mc.simulate_months(L, mean, months, seed=2, volume_cv=cv, method=method)
        assert sim.method == method and (sim.completed == sim.tasks).all()
        assert sim.spend == pytest.approx(0.0012 * sim.tasks, rel=1e-9)
        for q in (0.5, 0.9, 0.99):
            want = stats.nbinom.ppf(q, k, k / (k + mean))
            assert np.quantile(sim.tasks, q) == pytest.approx(want, rel=0.025), (method, q)


def test_months_from_outcome_counts_are_exact_without_variation(fixtures):
    """Without variation a month built from outcome counts (cells, then each phase's outcomes,
    multinomial) has the distribution of one simulated task by task."""
    L = fixture_ladders(fixtures, "three-tier")
    exact = evaluate(L)
    N, months = 300, 6000
    a = mc.simulate_months(L, N, months, seed=1, method="tasks")
    b = mc.simulate_months(L, N, months, seed=2, method="outcomes")
    assert b.method == "outcomes"
    sd = a.spend.std()
    se_mean = sd / math.sqrt(months)
    assert abs(b.spend.mean() - N * exact.spend_per_task) <= 4.5 * se_mean
    assert abs(b.completed.mean() - N * exact.completion_rate) <= \
        4.5 * b.completed.std() / math.sqrt(months)
    assert b.spend.std() == pytest.approx(sd, rel=0.06)
    for q in (0.5, 0.9, 0.99):          # quantiles within their sampling error (~0.1 sd)
        assert abs(np.quantile(b.spend, q) - np.quantile(a.spend, q)) <= 0.15 * sd, q
    np.testing.assert_allclose(sum(b.by_provider.values()), b.spend, rtol=1e-12)
    assert (b.completed <= N).all()


def test_months_from_cell_moments_match_task_simulation_at_moderate_counts(tmp_path):
    """With variation, months built per cell from the exact mean and covariance (small cells
    task by task) agree with months simulated task by task at a moderate count: the mean within
    its standard error, the spread within 8%, P50/P90/P99 within 0.3 standard deviations of the
    monthly spend (about their sampling error from 2,500 months; 1.6% of the spend here)."""
    var = {"difficulty": 1.3, "tokens": 0.7, "tokens_follow_difficulty": 0.5}
    table, wl, strategies = varied_setup(tmp_path, var)
    L = compile_ladders(table, strategies[0], wl)
    exact = evaluate(L)
    N, months = 2500, 2500
    a = mc.simulate_months(L, N, months, seed=1, method="tasks")
    b = mc.simulate_months(L, N, months, seed=2, method="outcomes")
    assert b.method == "cells"
    mean = N * exact.spend_per_task
    assert abs(b.spend.mean() - mean) <= 4.5 * b.spend.std() / math.sqrt(months)
    assert b.spend.std() == pytest.approx(a.spend.std(), rel=0.08)
    sd = a.spend.std()
    for q in (0.5, 0.9, 0.99):
        assert abs(np.quantile(b.spend, q) - np.quantile(a.spend, q)) <= 0.3 * sd, q
    assert b.completed.mean() == pytest.approx(N * exact.completion_rate, rel=0.002)
    np.testing.assert_allclose(sum(b.by_provider.values()), b.spend, rtol=1e-12)

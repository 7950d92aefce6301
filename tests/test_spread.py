"""Spread a budget can trust (issue 10, point 5): `compare --engine montecarlo` per-task cost
percentiles and `budget` monthly percentiles include task-size spread (variation.tokens, r) and
volume variation (tasks_per_month {mean, cv}), checked against routes written apart from the
engine: closed-form lognormal mixtures, a direct simulation of the cost model in numpy, and the
mean and variance of a gamma-Poisson sum of lognormal tasks worked by hand."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
from numpy.polynomial.hermite_e import hermegauss
from scipy import optimize

import helpers as H
from costsim.api import compare
from costsim.budget import budget

# One model at $1/M input, $2/M output, no cache; one phase of one call: 1,000 tokens in, 100
# out. Attempt 1 costs C1 = (1000 + 2*100)/1e6; attempt 2 resends attempt 1's 1,100 tokens:
# C2 = (1100 + 1000 + 200)/1e6. Two attempts at most.
C1, C2 = 0.0012, 0.0023
K_SE = 4.0
N01 = NormalDist()


def _files(tmp_path, variation, success, tasks_per_month=1000):
    p = H.prices({"x": H.model("acme", "budget", 1.0, 2.0)})
    w = H.workload([{"name": "t", "share": 1.0, "phases": [
        {"phase": "implement", "calls": 1, "input_tokens": 1000, "output_tokens": 100,
         "success": {"x": success}}]}], variation=variation, tasks_per_month=tasks_per_month)
    return H.write(tmp_path, "prices.yaml", p), H.write(tmp_path, "workload.yaml", w)


def _mc_percentiles(tmp_path, variation, success, samples=300_000, seed=5):
    pp, wp = _files(tmp_path, variation, success)
    res = compare(prices=pp, policies=[], workload=wp, models=["x"],
                  engine="montecarlo", samples=samples, seed=seed)
    (r,) = [s for s in res.strategies if s.name == "single:x"]
    return r.extra["montecarlo"]["cost_percentiles"]


def _quantile_tolerance(sample_q, density, n):
    """K_SE standard errors of a sample quantile: sqrt(q (1 - q) / n) / density."""
    return K_SE * math.sqrt(sample_q * (1 - sample_q) / n) / density


@pytest.mark.parametrize("s", [0.0, 1.5])
def test_per_task_percentiles_are_a_lognormal_mixture_when_size_ignores_difficulty(tmp_path, s):
    """r = 0: a task's size u is independent of its outcomes (whatever the difficulty spread s),
    so its cost is u*C1 (first attempt succeeds, rate 0.6 over all tasks) or u*(C1 + C2), with
    log u ~ N(-t^2/2, t^2): P(cost <= x) = 0.6 Phi(a(x/C1)) + 0.4 Phi(a(x/(C1+C2))),
    a(y) = (ln y + t^2/2) / t. The percentiles solve it (scipy), apart from the engine."""
    t = 0.9
    got = _mc_percentiles(tmp_path, {"difficulty": s, "tokens": t,
                                     "tokens_follow_difficulty": 0.0}, [0.6, 0.5])

    def a(y):
        return (math.log(y) + t * t / 2) / t

    def cdf(x):
        return 0.6 * N01.cdf(a(x / C1)) + 0.4 * N01.cdf(a(x / (C1 + C2)))

    def pdf(x):
        return (0.6 * N01.pdf(a(x / C1)) + 0.4 * N01.pdf(a(x / (C1 + C2)))) / (t * x)

    for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        want = optimize.brentq(lambda x: cdf(x) - q, 1e-7, 1.0, xtol=1e-12)
        assert abs(got[name] - want) <= _quantile_tolerance(q, pdf(want), 300_000), \
            (name, got[name], want)


def _solve_b(p, s, z, w):
    """The b with mean over z of sigmoid(b - s z) = p (the cost model's reading of a rate)."""
    if s == 0:
        return math.log(p / (1 - p))
    return optimize.brentq(lambda b: float(w @ (1 / (1 + np.exp(-(b - s * z))))) - p, -50, 50,
                           xtol=1e-13)


def test_per_task_percentiles_match_a_direct_simulation_when_size_follows_difficulty(tmp_path):
    """r > 0: the hard tasks are the large ones and the ones retried, so the mixture no longer
    factors. A direct simulation of the cost model here (numpy; not the engine's sampler):
    z, e ~ N(0,1), u = exp(t (r z + sqrt(1-r^2) e) - t^2/2), attempt k succeeds with
    sigmoid(b_k - s z), b_k from the rates 0.6 then 0.5; cost u*C1 or u*(C1 + C2)."""
    s, t, r = 1.5, 0.9, 0.8
    n = 300_000
    got = _mc_percentiles(tmp_path, {"difficulty": s, "tokens": t,
                                     "tokens_follow_difficulty": r}, [0.6, 0.5], samples=n)
    zq, wq = hermegauss(120)
    wq = wq / wq.sum()
    b1, b2 = _solve_b(0.6, s, zq, wq), _solve_b(0.5, s, zq, wq)
    rng = np.random.default_rng(20261126)
    z, e = rng.standard_normal(n), rng.standard_normal(n)
    u = np.exp(t * (r * z + math.sqrt(1 - r * r) * e) - t * t / 2)
    first = rng.random(n) < 1 / (1 + np.exp(-(b1 - s * z)))
    cost = np.where(first, u * C1, u * (C1 + C2))
    assert abs(first.mean() - 0.6) < K_SE * math.sqrt(0.24 / n)   # the rates hold over tasks
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        want = float(np.quantile(cost, q))
        # density at the quantile from the sample (a window of +-1% of the mass)
        lo, hi = np.quantile(cost, [q - 0.005, q + 0.005])
        dens = 0.01 / (hi - lo)
        tol = math.sqrt(2) * _quantile_tolerance(q, dens, n)       # two samples
        assert abs(got[name] - want) <= tol, (name, got[name], want, tol)
    # and the spread is really wider than with sizes that ignore difficulty
    (tmp_path / "r0").mkdir()
    plain = _mc_percentiles(tmp_path / "r0", {"difficulty": s, "tokens": t,
                                              "tokens_follow_difficulty": 0.0}, [0.6, 0.5])
    assert got["p99"] > 1.1 * plain["p99"]


@pytest.mark.parametrize("cv", [0.0, 0.35])
def test_budget_months_are_a_gamma_poisson_sum_of_lognormal_tasks(tmp_path, cv):
    """Every task succeeds at its one attempt and costs C1*u (t = 0.8): a month's total is the
    sum of N such costs, N gamma-Poisson with mean 200 and the cv. By hand:
    E T = 200 C1; Var T = E N Var X + Var N (E X)^2 with Var X = C1^2 (exp(t^2) - 1) and
    Var N = 200 + (cv 200)^2. P50/P90/P99 against a direct simulation of those months here."""
    t, mean = 0.8, 200.0
    pp, wp = _files(tmp_path, {"tokens": t, "tokens_follow_difficulty": 0.3}, 1.0,
                    tasks_per_month={"mean": mean, "cv": cv})
    months = 6000
    r = budget(prices=pp, policies=[], workload=wp, strategy="single:x", months=months, seed=9)
    assert r.tasks_cv == cv and r.method == "tasks"
    var_x = C1 ** 2 * (math.exp(t * t) - 1)
    var_n = mean + (cv * mean) ** 2
    var_t = mean * var_x + var_n * C1 ** 2
    assert r.expected == pytest.approx(mean * C1, rel=1e-12)
    assert abs(r.simulated_mean - mean * C1) <= K_SE * math.sqrt(var_t / months)
    sd = float(np.std(r.monthly_spend, ddof=1))
    # the sample sd's standard error ~ sd sqrt((kurtosis - 1) / (4 months)); kurtosis < 6 here
    assert abs(sd / math.sqrt(var_t) - 1) <= K_SE * math.sqrt(5 / (4 * months))
    # the months simulated directly (numpy; the engine's sampler not involved)
    rng = np.random.default_rng(77)
    M = 40_000
    lam = rng.gamma(1 / cv ** 2, mean * cv ** 2, size=M) if cv > 0 else np.full(M, mean)
    N = rng.poisson(lam)
    x = C1 * np.exp(t * rng.standard_normal(int(N.sum())) - t * t / 2)
    month = np.repeat(np.arange(M), N)
    direct = np.bincount(month, weights=x, minlength=M)
    for q, got in ((0.5, r.p50), (0.9, r.p90), (0.99, r.p99)):
        want = float(np.quantile(direct, q))
        lo, hi = np.quantile(direct, [q - 0.005, q + 0.005])
        dens = 0.01 / (hi - lo)
        tol = K_SE * math.sqrt(q * (1 - q)) / dens * math.sqrt(1 / months + 1 / M)
        assert abs(got - want) <= tol, (q, got, want, tol)

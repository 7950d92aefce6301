"""The example worked by hand in docs/cost-model.md, checked against the engine."""

import pytest

from costsim.engine.analytic import evaluate
from costsim.engine.compile import Strategy, compile_ladders

from helpers import load_all, model, prices, workload


def test_worked_example(tmp_path):
    p = prices({"X": model(input=2.0, output=10.0, cache_read=0.2)})
    w = workload([{"name": "t", "share": 1.0, "phases": [
        {"phase": "implement", "calls": 2, "input_tokens": 1000, "output_tokens": 100,
         "success": {"X": 0.5}},
        {"phase": "review", "calls": 1, "input_tokens": 500, "output_tokens": 200,
         "success": {"X": 1.0}}]}],
        system_tokens=1000, cache_hit_rate=0.5, max_attempts=2,
        defects={"phases": ["implement"], "rate": {"X": 0.1}, "catch_rate": {"X": 0.5},
                 "review_minutes": {"base": 10, "per_defect": 30}})
    table, wl, _ = load_all(tmp_path, p, w)
    m = evaluate(compile_ladders(table, Strategy.single("X"), wl))
    assert m.spend_per_task == pytest.approx(0.021425, rel=1e-12)
    assert m.completion_rate == pytest.approx(0.75, rel=1e-12)
    assert m.cost_per_completed_task == pytest.approx(0.021425 / 0.75, rel=1e-12)
    assert m.defect_rate == pytest.approx(0.05, rel=1e-12)
    assert m.review_minutes == pytest.approx(11.5, rel=1e-12)


# --- the example with variation (docs/cost-model.md, "Example with variation") ---------------

def _phi(z):
    import math

    return math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def _sigma(x):
    import math

    return 1.0 / (1.0 + math.exp(-x))


def _integral(f, hi=14.0):
    """E[f(z)] for z ~ N(0, 1), by adaptive quadrature (apart from costsim's own rule)."""
    from scipy import integrate

    return integrate.quad(lambda z: f(z) * _phi(z), -14.0, hi, epsabs=0, epsrel=1e-12,
                          limit=200)[0]


def test_variation_example_size_part(tmp_path):
    """One call of 100,000 input tokens at $2/1M, long context above 150,000 at $4/1M, sizes
    lognormal with t = 0.6: E = 0.2 + 0.2 * Phi((-ln 1.5 + 0.18) / 0.6) = 0.270708."""
    import math

    from scipy.special import ndtr

    by_hand = 0.2 + 0.2 * ndtr((-math.log(1.5) + 0.18) / 0.6)
    assert by_hand == pytest.approx(0.270708, abs=5e-7)
    p = prices({"X": model(input=2.0, output=10.0,
                           long_context={"above": 150000, "input": 4.0})})
    w = workload([{"name": "t", "share": 1.0, "phases": [
        {"phase": "implement", "calls": 1, "input_tokens": 100000, "output_tokens": 0,
         "success": {"X": 1.0}}]}], variation={"tokens": 0.6})
    table, wl, _ = load_all(tmp_path, p, w)
    m = evaluate(compile_ladders(table, Strategy.single("X"), wl))
    assert m.spend_per_task == pytest.approx(by_hand, rel=1e-9)
    assert m.completion_rate == 1.0


@pytest.mark.parametrize("variation, spend, completion, cpct", [
    (None, 0.002, 0.75, 0.0026667),
    ({"difficulty": 2}, 0.002, 0.651426, 0.0030702),
    ({"difficulty": 2, "tokens": 0.5, "tokens_follow_difficulty": 1}, 0.0022955, 0.651426,
     0.0035237),
])
def test_variation_example_difficulty_part(tmp_path, variation, spend, completion, cpct):
    """Two attempts at p = 0.5 ($0.001, then $0.002 resending the first). With difficulty
    spread s = 2, b = 0 and attempt 1 fails with sigma(2z) given z: completion
    1 - E[sigma(2z)^2]; with size following difficulty, spend 0.001 + 0.002 E[u sigma(2z)]."""
    import math

    p = prices({"X": model(input=1.0, output=1.0)})
    w = workload([{"name": "t", "share": 1.0, "phases": [
        {"phase": "implement", "calls": 1, "input_tokens": 1000, "output_tokens": 0,
         "success": {"X": 0.5}}]}], max_attempts=2,
        **({"variation": variation} if variation else {}))
    table, wl, _ = load_all(tmp_path, p, w)
    m = evaluate(compile_ladders(table, Strategy.single("X"), wl))
    if variation is None:
        want_c, want_e = 0.75, 0.002
    else:
        want_c = 1.0 - _integral(lambda z: _sigma(2 * z) ** 2)
        t = variation.get("tokens", 0.0)
        want_e = 0.001 * _integral(lambda z: math.exp(t * z - t * t / 2)) \
            + 0.002 * _integral(lambda z: math.exp(t * z - t * t / 2) * _sigma(2 * z))
    assert m.completion_rate == pytest.approx(want_c, rel=1e-8)
    assert m.spend_per_task == pytest.approx(want_e, rel=1e-8)
    # the rounded figures the doc prints
    assert m.spend_per_task == pytest.approx(spend, abs=5e-8)
    assert m.completion_rate == pytest.approx(completion, abs=5e-7)
    assert m.cost_per_completed_task == pytest.approx(cpct, abs=5e-8)

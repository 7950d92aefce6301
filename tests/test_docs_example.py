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

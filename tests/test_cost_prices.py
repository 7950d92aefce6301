"""A log that shows costs and no tokens (benchmark results): effective prices and phase sizes
that make costsim's engine bill every attempt what the log recorded (costsim/calibrate/cost_only.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from costsim.api import evaluate_strategy
from costsim.calibrate.cost_only import (NOMINAL_TOKENS, apply_to_workload, cost_only_phases,
                                 fit_cost_only, price_table)
from costsim.engine.compile import Strategy
from costsim.loader import load_prices, load_workload
from costsim.logs.attempts import read_attempts

FIX = Path(__file__).parent / "fixtures"


def _log(tmp_path, rows):
    p = tmp_path / "runs.csv"
    pd.DataFrame(rows).to_csv(p, index=False)
    return read_attempts(p).frame


def _workload(phases, max_attempts=1):
    return {"version": 1, "name": "fitted", "max_attempts": max_attempts, "system_tokens": 3000,
            "cache_hit_rate": 0.2, "task_types": [{"name": "t", "share": 1.0, "phases": [
                {"phase": p, "calls": 3, "input_tokens": 0, "output_tokens": 0,
                 "success": {"default-for-test": 1.0}} for p in phases]}]}


def _evaluate(tmp_path, wl: dict, px: dict, model: str):
    (tmp_path / "w.yaml").write_text(yaml.safe_dump(wl))
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(px))
    return evaluate_strategy(load_prices(tmp_path / "p.yaml"), Strategy.single(model),
                             load_workload(tmp_path / "w.yaml"))


def test_openhands_configs_cost_what_they_recorded(tmp_path):
    rec = pd.read_csv(FIX / "openhands_excerpt.csv")
    frame = _log(tmp_path, {"run": rec.config, "task_id": rec.instance, "task_type": "t",
                            "phase": "solve", "attempt": 1, "model": rec.config,
                            "input_tokens": 0, "output_tokens": 0, "success": rec.resolved,
                            "cost_usd": rec.cost_usd})
    assert cost_only_phases(frame) == {("t", "solve")}
    fit = fit_cost_only(frame)
    assert fit.sizes == {("t", "solve"): NOMINAL_TOKENS}
    wl = apply_to_workload(_workload(["solve"]), fit)
    px = price_table(fit, as_of="2026-06-30")
    for config, g in rec.groupby("config"):
        wl["task_types"][0]["phases"][0]["success"] = {config: 1.0}
        r = _evaluate(tmp_path, wl, px, config)
        assert r.spend_per_task == pytest.approx(g.cost_usd.mean(), rel=1e-9)
    # effective prices rank the configs by cost: the cheapest third is budget
    tiers = {m: e["tier"] for m, e in px["models"].items()}
    assert tiers["results/DeepSeek-V3.2-Reasoner"] == "budget"
    assert tiers["results/GPT-5.2"] == "premium"


def test_two_phases_and_retries_are_billed_their_own_cost(tmp_path):
    # phase b costs twice phase a for both models; model y costs three times x
    rows = []
    for i in range(4):
        for m, k in (("x", 1.0), ("y", 3.0)):
            rows.append({"run": m, "task_id": f"t{i}", "task_type": "t", "phase": "a",
                         "attempt": 1, "model": m, "input_tokens": 0, "output_tokens": 0,
                         "success": True, "cost_usd": 0.1 * k})
            rows.append({"run": m, "task_id": f"t{i}", "task_type": "t", "phase": "b",
                         "attempt": 1, "model": m, "input_tokens": 0, "output_tokens": 0,
                         "success": False, "cost_usd": 0.2 * k})
            rows.append({"run": m, "task_id": f"t{i}", "task_type": "t", "phase": "b",
                         "attempt": 2, "model": m, "input_tokens": 0, "output_tokens": 0,
                         "success": True, "cost_usd": 0.2 * k})
    fit = fit_cost_only(_log(tmp_path, rows))
    assert fit.notes == []
    assert fit.sizes[("t", "b")] / fit.sizes[("t", "a")] == pytest.approx(2.0, rel=1e-5)
    assert fit.prices["y"] / fit.prices["x"] == pytest.approx(3.0, rel=1e-9)
    wl = apply_to_workload(_workload(["a", "b"], max_attempts=2), fit)
    px = price_table(fit, as_of="2026-06-30")
    for m, k in (("x", 1.0), ("y", 3.0)):
        wl["task_types"][0]["phases"][0]["success"] = {m: 1.0}
        wl["task_types"][0]["phases"][1]["success"] = {m: [0.0, 1.0]}
        r = _evaluate(tmp_path, wl, px, m)
        # a, then b twice: no resent context, no system prompt billed
        assert r.spend_per_task == pytest.approx((0.1 + 0.2 + 0.2) * k, rel=1e-5)


def test_a_log_with_tokens_is_not_cost_only(tmp_path):
    frame = _log(tmp_path, [{"task_id": "a", "task_type": "t", "phase": "p", "attempt": 1,
                             "model": "x", "input_tokens": 10, "output_tokens": 1,
                             "success": True, "cost_usd": 0.1}])
    assert cost_only_phases(frame) == set() and fit_cost_only(frame) is None
